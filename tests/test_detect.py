"""`lstm-compare detect`, loading files as people write them, and notes on how a file was run."""

import inspect
import sys

import pytest

import lstm_compare.handrolled.cs231n_lstm
import lstm_compare.handrolled.karpathy_lstm
import lstm_compare.handrolled.question_lstm
from lstm_compare import Config, ProblemSpec, run
from lstm_compare.frontends.cli import main
from lstm_compare.usercode.detect import describe_layout, run_detection
from helpers import write_edited as write

CS231N_SOURCE = inspect.getsource(lstm_compare.handrolled.cs231n_lstm)
QUESTION_SOURCE = inspect.getsource(lstm_compare.handrolled.question_lstm)


def detect_cli(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", *map(str, args)])
    return exit_info.value.code, capsys.readouterr().out


def test_a_correct_file_is_confirmed_in_its_conventions_layout(capsys):
    code, out = detect_cli(capsys, "--impl", inspect.getsourcefile(lstm_compare.handrolled.cs231n_lstm))
    assert code == 0
    assert "convention: cs231n (it defines lstm_step_forward and lstm_step_backward" in out
    assert "your gate blocks are ordered i, f, o, g" in out and "as the cs231n convention says" in out


def test_gate_blocks_in_another_order_are_found_and_named(tmp_path):
    path = write(tmp_path, "figo", CS231N_SOURCE,
                 ("i = sigmoid(a[:, :H])", "i = sigmoid(a[:, H:2 * H])"),
                 ("f = sigmoid(a[:, H:2 * H])", "f = sigmoid(a[:, :H])"),
                 ("o = sigmoid(a[:, 2 * H:3 * H])", "o = sigmoid(a[:, 3 * H:])"),
                 ("g = np.tanh(a[:, 3 * H:])", "g = np.tanh(a[:, 2 * H:3 * H])"))
    detection = run_detection(path)
    assert not detection.ok and len(detection.matching) == 1
    assert describe_layout(detection.matching[0]).startswith("your gate blocks are ordered f, i, g, o")


def test_concatenation_h_then_x_is_found_in_question_style_code(tmp_path):
    path = write(tmp_path, "hx", QUESTION_SOURCE, ("np.concatenate([x, h_prev], axis=-1)",
                                              "np.concatenate([h_prev, x], axis=-1)"))
    detection = run_detection(path)
    assert [describe_layout(layout) for layout in detection.matching] == [
        "your weights act on [h; x] from the right (v @ W)"]


def test_when_no_layout_matches_the_gates_that_never_match_are_named(tmp_path, capsys):
    path = write(tmp_path, "otanh", CS231N_SOURCE,
                 ("o = sigmoid(a[:, 2 * H:3 * H])", "o = np.tanh(a[:, 2 * H:3 * H])"))
    code, out = detect_cli(capsys, "--impl", path)
    assert code == 1 and "gates that match under no ordering: o." in out


def test_a_file_whose_module_level_code_fails_is_loaded_with_its_definitions_and_says_so(tmp_path):
    script = QUESTION_SOURCE + "\nimport helpers_from_a_notebook\nTRAINED = train()\nassert False, 'gradients disagree'\n"
    path = write(tmp_path, "as_posted", script)
    report = run(path, Config(references=("jax",)))
    assert report.findings == ()
    note = next(n for n in report.notes if n.startswith("running"))
    assert "ModuleNotFoundError: No module named 'helpers_from_a_notebook'" in note
    assert "only its definitions were loaded" in note and "\n" not in note


def test_a_float32_run_of_code_that_keeps_float32_gets_no_precision_note():
    report = run(lstm_compare.handrolled.karpathy_lstm, Config(spec=ProblemSpec(dtype="float32"), references=("jax",)))
    assert report.findings == ()
    assert not any("computes in float64" in n for n in report.notes)  # the project's own keeps float32


def test_a_float32_run_of_code_that_upcasts_is_noted(tmp_path):
    path = write(tmp_path, "upcast", CS231N_SOURCE,
                 ("next_c = f * prev_c + i * g", "next_c = (f * prev_c + i * g).astype(np.float64)"))
    report = run(path, Config(spec=ProblemSpec(dtype="float32"), references=("jax",), modes=("isolated",)))
    note = next(n for n in report.notes if "computes in float64" in n)
    assert "(c, f, g, h, ... come back float64)" in note and "\n" not in note


def test_a_file_that_returns_per_example_gradients_is_told_so_not_that_it_takes_single_vectors(tmp_path, capsys):
    path = write(tmp_path, "per_example", QUESTION_SOURCE,
                 ("    lead = list(range(a.ndim - 1))\n    return np.tensordot(a, b, axes=(lead, lead))",
                  "    return a[..., :, None] * b[..., None, :]"),
                 ("    return d.reshape(-1, d.shape[-1]).sum(axis=0)", "    return d"))
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--impl", str(path), "--batch", "4", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "takes batches but returns per-example parameter gradients" in err
    assert "has shape (4, 8, 5): one gradient per batch element" in err and "single vectors" not in err


def test_a_sibling_named_compare_is_the_one_the_users_file_imports_and_its_errors_are_located_there(tmp_path):
    (tmp_path / "compare.py").write_text("def helper(x):\n    return x * 1.0\n")
    (tmp_path / "lstm_full.py").write_text("def gates(c):\n    raise ValueError('from a sibling')\n")
    path = write(tmp_path, "mine", QUESTION_SOURCE,
                 ("import numpy as np\n", "import numpy as np\n\nimport compare\nimport lstm_full\n"),
                 ("xh = np.concatenate([x, h_prev], axis=-1)",
                  "xh = compare.helper(np.concatenate([x, h_prev], axis=-1))"),
                 ("    c = f * c_prev + i * g\n", "    c = f * c_prev + i * g\n    lstm_full.gates(c)\n"))
    report = run(path, Config(references=("jax",), modes=("isolated",)))
    message = report.failures[0].message
    assert message == "isolated forward step 0: lstm raised ValueError: from a sibling (line 2 of lstm_full.py)."
    assert sys.modules["compare"].__file__ == str(tmp_path / "compare.py")  # the user's own, no name of ours
