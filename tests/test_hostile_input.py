"""Hostile input, round 3 (issue 20): a declared attribute whose property misbehaves, declaration values of the
wrong kind, links to nothing as --out, an unusable cache folder, numba switched off by the file, standard output
closed by the file, a second Ctrl-C, and a report folder that cannot be written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_compare import Config, ProblemSpec, run
from lstm_compare import caching
from lstm_compare.measuring import kernels
from lstm_compare.output import atomic
from test_declared import STATEFUL
from helpers import report_cli, write_impl

SMALL = ProblemSpec(steps=3, hidden=3, inputs=2)
TORCH = Config(spec=SMALL, references=("torch",), modes=("isolated",))
# The cell's c behind a property that only the harness reads (its own code uses _c)
C_PROPERTY = (("        self.h = self.c = np.zeros((1, n_hidden))\n",
               "        self.h = self._c = np.zeros((1, n_hidden))\n"),
              ("    def forward(self, x):\n", "    @property\n    def c(self):\n        BODY\n\n    @c.setter\n"
                                              "    def c(self, value):\n        self._c = value\n\n"
                                              "    def forward(self, x):\n"),
              ("        c_prev, self.c = self.c, f * self.c + i * g\n        self.h = o * np.tanh(self.c)\n"
               "        self.history.append((z, c_prev, self.c, g, i, f, o))\n",
               "        c_prev, self._c = self._c, f * self._c + i * g\n        self.h = o * np.tanh(self._c)\n"
               "        self.history.append((z, c_prev, self._c, g, i, f, o))\n"))


def _stateful(tmp_path, body):
    text = STATEFUL
    for old, new in C_PROPERTY:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text = text.replace("BODY", body)
    path = tmp_path / "stateful_property.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, raised", [("raise ValueError('no c yet')", "ValueError: no c yet"),
                                          ("raise TypeError('c is not ready')", "TypeError: c is not ready")])
def test_a_declared_attribute_whose_property_raises_is_that_steps_exception(tmp_path, body, raised):
    report = run(_stateful(tmp_path, body), TORCH)
    (finding,) = report.findings
    assert (finding.phase, finding.step, finding.tensor) == ("forward", 0, "exception")
    assert f"reading .c raised {raised} (line" in finding.message


def test_a_declared_attribute_whose_property_blocks_is_timed_out_at_its_step(tmp_path):
    report = run(_stateful(tmp_path, "import time; time.sleep(30)"), Config(spec=SMALL, references=("torch",),
                                                                             modes=("isolated",), timeout=1))
    (finding,) = report.findings
    assert (finding.phase, finding.step) == ("forward", 0) and "reading .c timed out after 1 s" in finding.message


def test_a_declaration_value_of_the_wrong_kind_is_one_sentence(tmp_path, capsys):
    path = tmp_path / "array_value.py"
    path.write_text(STATEFUL.replace('"layout": {"W"', '"vectors": np.array([1, 2]),\n    "layout": {"W"'))
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "r")
    assert (code, out) == (2, "") and err == "lstm-compare: error: LSTM_COMPARE['vectors'] must be a text, not a " \
                                             "ndarray.\n"


def test_a_declaration_error_of_any_length_is_cut_on_the_terminal(tmp_path, capsys):
    path = tmp_path / "long_key.py"
    path.write_text(STATEFUL.replace('"layout": {"W"', f'"{"x" * 5000}": 1,\n    "layout": {{"W"'.replace("{{", "{")))
    code, _, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and len(err) < 1200 and "more characters]" in err


@pytest.mark.parametrize("target", ["missing", "loop"])
def test_a_link_to_nothing_as_out_is_refused_before_any_work(tmp_path, capsys, target):
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "nowhere" if target == "missing" else out)
    code, stdout, err = report_cli(capsys, "--out", out)
    assert (code, stdout) == (2, "") and "is a link that leads nowhere" in err and err.count("\n") == 1


def test_an_unusable_cache_folder_turns_the_cache_off(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    assert caching.enable(jax_too=False) is None and caching.numba_cache_dir() is None


def test_numba_runs_with_the_environment_the_process_started_with(monkeypatch):
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")  # as a file under test might, at import
    assert "NUMBA_DISABLE_JIT" not in kernels._environment() or "NUMBA_DISABLE_JIT" in kernels._NUMBA_ENVIRONMENT
    with kernels._numba_environment():
        assert os.environ.get("NUMBA_DISABLE_JIT") == kernels._NUMBA_ENVIRONMENT.get("NUMBA_DISABLE_JIT")
    assert os.environ["NUMBA_DISABLE_JIT"] == "1"


@pytest.mark.parametrize("closing", ["sys.stdout.close()", "os.close(1)"])
def test_a_file_that_closes_standard_output_still_gets_its_summary(tmp_path, closing):
    opening = ("import numpy as np\n", f"import os, sys\nimport numpy as np\n\n{closing}\n")
    path = write_impl(tmp_path, "closes", opening)
    result = subprocess.run([sys.executable, "-m", "lstm_compare", "report", "--impl", str(path), "--steps", "3",
                             "--reference", "torch", "--out", str(tmp_path / "r")], capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("lstm-compare: ") and "No divergence" in result.stdout


def test_a_second_interrupt_ends_the_child_at_once():
    code = ("import signal, sys, time\nfrom lstm_compare.usercode.supervise import InterruptOnce\n"
            "handler = InterruptOnce()\ntry:\n    handler(signal.SIGINT, None)\nexcept KeyboardInterrupt:\n"
            "    print('first', flush=True)\nhandler(signal.SIGINT, None)\nprint('its copy', flush=True)\n"
            "time.sleep(0.6)\nhandler(signal.SIGINT, None)\nprint('never')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (130, "first\nits copy\n")


def test_a_folder_that_cannot_be_written_mid_run_is_one_sentence_and_leaves_nothing(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.os, "open", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)  # as in a folder made read-only: even the cleanup is refused
    with pytest.raises(atomic.UsageError, match="cannot write .*report.csv: Permission denied"):
        atomic.commit([atomic.Output(tmp_path / "report.csv", lambda path: path.write_text("x"))])
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_while_the_program_imports_is_one_line_and_exit_130():
    """The program's entry module sets its SIGINT handler before it imports anything of the tool."""
    from lstm_compare.errors import EXIT_INTERRUPTED

    code = ("import os, signal, sys\nsys.argv = ['lstm-compare', '--version']\n"
            "import lstm_compare.frontends.entry\nos.kill(os.getpid(), signal.SIGINT)\n"
            "import time\ntime.sleep(5)\nprint('never')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (EXIT_INTERRUPTED, "", "lstm-compare: interrupted.\n")
