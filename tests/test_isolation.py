"""The process kept apart from what the user's file changes in it (issue 20): numpy's and the builtins' namespaces,
signal handlers, the recursion limit, warning filters, a sibling module imported inside a function, and a fork."""

import builtins
import signal
import subprocess
import sys
import warnings

import numpy as np

import lstm_compare
from lstm_compare import Config, ProblemSpec
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.isolation import isolated
from helpers import report_cli, write_impl

SMALL = ProblemSpec(steps=4, hidden=3, inputs=2)
TORCH = Config(spec=SMALL, references=("torch",))
FORGET_BUG = ("    df_pre = dc * c_prev * f * (1 - f)\n", "    df_pre = dc * c_prev * f\n")
LSTM_FIRST_LINE = "    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)\n"


def test_a_file_that_replaces_a_numpy_function_keeps_it_in_its_own_calls_while_the_harness_runs_on_numpys(tmp_path):
    # A wrong count_nonzero in the harness would turn this located bug into a match.
    patch = ("import numpy as np\n", "import numpy as np\n\nSEEN = []\nnp.count_nonzero = lambda *a, **k: 0\n")
    seen = "    SEEN.append(np.count_nonzero(np.ones(3)))\n"
    path = write_impl(tmp_path, "patches_numpy", patch, FORGET_BUG, (LSTM_FIRST_LINE, seen + LSTM_FIRST_LINE))
    with isolated():
        binding = bind(path)
        report, module = lstm_compare.run(binding, TORCH), binding.module
    assert [(f.reference, f.mode, f.phase, f.step, f.tensor) for f in report.findings][:2] == [
        ("torch", "isolated", "backward", 3, "dWf"), ("torch", "chained", "backward", 3, "dWf")]
    assert set(module.SEEN) == {0}  # the file's own count_nonzero, in every one of its calls
    assert np.count_nonzero(np.ones(3)) == 3


def test_a_file_that_redirects_print_still_leaves_the_summary_on_stdout(tmp_path, capsys):
    redirect = ("import numpy as np\n",
                "import builtins\nimport numpy as np\n\nbuiltins.print = lambda *a, **k: None\n")
    path = write_impl(tmp_path, "quiet", redirect)
    code, out, _ = report_cli(capsys, "--impl", path, "--steps", "3", "--reference", "torch", "--out", tmp_path / "r")
    assert code == 0 and out.startswith("lstm-compare: ") and "No divergence" in out
    assert builtins.print is print


def test_settings_a_file_makes_at_import_are_its_own(tmp_path):
    changes = ("import numpy as np\n", "import signal, sys, warnings\nimport numpy as np\n\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nsys.setrecursionlimit(60)\n"
               "warnings.simplefilter('error')\n")
    path = write_impl(tmp_path, "settings", changes)
    before = (signal.getsignal(signal.SIGTERM), sys.getrecursionlimit(), list(warnings.filters))
    report = lstm_compare.run(path, Config(spec=SMALL))  # torch and JAX run beside a recursion limit of 60
    assert report.findings == () and report.failures == ()
    assert (signal.getsignal(signal.SIGTERM), sys.getrecursionlimit(), list(warnings.filters)) == before


def test_a_sibling_module_imported_inside_a_function_is_found_at_every_call(tmp_path):
    (tmp_path / "helpers_of_mine.py").write_text("import numpy as np\n\ndef concat(x, h):\n"
                                                 "    return np.concatenate([x, h], axis=-1)\n")
    inside = "    from helpers_of_mine import concat\n    xh = concat(x, h_prev)\n"
    path = write_impl(tmp_path, "sibling_inside", (LSTM_FIRST_LINE, inside))
    report = lstm_compare.run(path, TORCH)
    assert report.failures == () and report.findings == ()
    assert str(tmp_path) not in sys.path


def test_a_fork_in_the_users_code_does_not_run_the_harness_twice(tmp_path):
    fork = "    import os\n    if not FORKED:\n        FORKED.append(os.fork())\n"
    path = write_impl(tmp_path, "forks", ("import numpy as np\n", "import numpy as np\n\nFORKED = []\n"),
                      (LSTM_FIRST_LINE, fork + LSTM_FIRST_LINE))
    result = subprocess.run([sys.executable, "-m", "lstm_compare", "report", "--impl", str(path), "--steps", "3",
                             "--reference", "torch", "--out", str(tmp_path / "r")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("lstm-compare: ") == 1 and result.stdout.count("No divergence") == 1


def test_framework_settings_a_file_makes_do_not_reach_the_references(tmp_path):
    import jax
    import torch

    changes = ("import numpy as np\n", "import jax\nimport numpy as np\nimport torch\n\n"
               "torch.set_default_device('meta')\ntorch.set_default_dtype(torch.float64)\n"
               "jax.config.update('jax_numpy_rank_promotion', 'raise')\n")
    path = write_impl(tmp_path, "frameworks", changes)
    try:
        report = lstm_compare.run(path, Config(spec=ProblemSpec(steps=4, hidden=3, inputs=2, batch=2)))
    finally:
        torch.set_default_device("cpu")
        torch.set_default_dtype(torch.float32)
        jax.config.update("jax_numpy_rank_promotion", "allow")
    assert report.findings == () and report.failures == ()
