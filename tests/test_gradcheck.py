"""`lstm-compare gradcheck`: a correct question's-convention file passes, a backward bug fails at its parameter and
entry, and unusable input is one line with exit 2 (an exception inside the user's code: one line, exit 1)."""

from pathlib import Path

import numpy as np
import pytest

from lstm_compare import handrolled
from lstm_compare import ProblemSpec, UsageError
from lstm_compare.frontends.cli import main
from lstm_compare.modes.gradcheck import MIN_PER_PARAMETER, gradcheck
from helpers import without, write_impl

SMALL = ["--steps", "5", "--hidden", "3", "--inputs", "2"]


def write(tmp_path, name, old=None, new=None, drop=()):
    """handrolled with ``old`` replaced by ``new`` and the functions in ``drop`` hidden, as a file; its path."""
    edits = ((old, new),) if old is not None else ()
    return str(write_impl(tmp_path, name, *edits, *without(*drop)))


def cli(capsys, *argv):
    with pytest.raises(SystemExit) as exited:
        main(["gradcheck", *argv])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_correct_seed_file_passes_with_exit_0(tmp_path, capsys):
    code, out, err = cli(capsys, "--impl", write(tmp_path, "correct"), *SMALL)
    assert (code, err) == (0, "")
    assert "every entry of 76" in out and "lstm_loss/dlstm_loss" in out
    assert out.strip().splitlines()[-1].startswith("Gradients agree: the worst relative error is")


def test_bias_gradient_from_the_wrong_gate_fails_at_bf_only_with_exit_1(tmp_path, capsys):
    path = write(tmp_path, "bf_bug", '"bf": _sum_batch(df_pre)', '"bf": _sum_batch(di_pre)')
    result = gradcheck(path, ProblemSpec(steps=5, hidden=3, inputs=2))
    assert [p.name for p in result.parameters if not p.passed] == ["bf"]
    bf, bi = result.parameters[5], result.parameters[6]
    assert [e.index for e in bf.entries] == [(2,), (0,), (1,)]  # worst first
    assert {e.index: e.analytic for e in bf.entries} == {e.index: e.analytic for e in bi.entries}  # bi's gradient
    assert bf.worst.numeric == pytest.approx(-0.0541653, rel=1e-5)

    code, out, _ = cli(capsys, "--impl", path, *SMALL)
    assert code == 1
    assert "  bf  FAILED 3/3" in out
    assert out.strip().splitlines()[-1] == ("Gradients disagree on 3 of 76 entries (bf 3); worst bf[2]: analytic "
                                            "-0.210506, numeric -0.0541653 (relative error 5.9e-01).")


def test_forget_gate_bug_in_dlstm_is_found_when_the_harness_drives_lstm_and_dlstm(tmp_path):
    path = write(tmp_path, "step_only", "df_pre = dc * c_prev * f * (1 - f)", "df_pre = dc * c * f * (1 - f)",
                 drop=("lstm_loss", "dlstm_loss"))
    result = gradcheck(path, ProblemSpec(steps=5, hidden=3, inputs=2))
    assert result.driver == "lstm/dlstm driven by the harness" and not result.passed
    failed = {p.name for p in result.parameters if not p.passed}
    assert {"Wf", "bf"} <= failed and not failed & {"Wy", "by"}  # the head's gradient does not pass through f


def test_the_questions_dy_doubles_every_gradient_when_there_are_two_outputs(tmp_path):
    path = write(tmp_path, "question_dy", "dy = 2 * (y - target) / y.shape[-1]", "dy = 2 * (y - target)")
    result = gradcheck(path, ProblemSpec(steps=5, hidden=3, inputs=2, outputs=2))
    entries = [e for p in result.parameters for e in p.entries]
    resolved = [e.relative_error for e in entries if abs(e.analytic) + abs(e.numeric) > result.floor]
    assert len(resolved) >= 0.9 * len(entries)
    np.testing.assert_allclose(resolved, 1 / 3, rtol=1e-4)  # |2n - n| / (|2n| + |n|)
    assert all(e.analytic == pytest.approx(2 * e.numeric, rel=1e-4, abs=1e-9) for e in entries)
    assert gradcheck(path, ProblemSpec(steps=5, hidden=3, inputs=2, outputs=1)).passed


def test_above_max_entries_a_seeded_sample_keeps_every_parameter():
    spec = ProblemSpec(steps=3, hidden=6, inputs=2)
    first, again = gradcheck(handrolled, spec, max_entries=60), gradcheck(handrolled, spec, max_entries=60)
    assert first.passed and first.total == 4 * 8 * 6 + 6 + 4 * 6 + 1
    counts = {p.name: len(p.entries) for p in first.parameters}
    assert counts == {"Wf": 8, "Wi": 8, "Wg": 8, "Wo": 8, "Wy": 6, "bf": 6, "bi": 6, "bg": 6, "bo": 6, "by": 1}
    assert first.checked == 63  # every parameter's minimum already exceeds 60
    counts = {p.name: len(p.entries) for p in gradcheck(handrolled, spec, max_entries=100).parameters}
    assert counts == {"Wf": 17, "Wi": 17, "Wg": 17, "Wo": 17, "Wy": 6, "bf": 6, "bi": 6, "bg": 6, "bo": 6, "by": 1}
    assert all(n >= min(MIN_PER_PARAMETER, p.size) for n, p in zip(counts.values(), first.parameters))
    assert [e.index for p in first.parameters for e in p.entries] == \
        [e.index for p in again.parameters for e in p.entries]


def test_nan_in_a_gradient_fails(tmp_path):
    path = write(tmp_path, "nan", '"by": _sum_batch(dy),', '"by": _sum_batch(dy) * np.nan,')
    result = gradcheck(path, ProblemSpec(steps=3, hidden=2, inputs=1))
    (failing,) = [p for p in result.parameters if not p.passed]
    assert failing.name == "by" and np.isnan(failing.worst.relative_error)


def test_an_exception_inside_dlstm_is_one_line_with_exit_1(tmp_path, capsys):
    path = write(tmp_path, "raises", "    H = h.shape[-1]\n", "    H = h.shape[-1]\n    raise KeyError('Wz')\n",
                 drop=("lstm_loss", "dlstm_loss"))
    line = Path(path).read_text().splitlines().index("    raise KeyError('Wz')") + 1
    code, out, err = cli(capsys, "--impl", path, *SMALL)
    assert (code, err) == (1, "")
    assert out.strip().splitlines()[-1] == ("The gradients could not be checked: backward step 4: dlstm raised "
                                            f"KeyError: 'Wz' (line {line} of raises.py).")


@pytest.mark.parametrize("case, expected", [
    ("missing", "has no function lstm(params, inp, h_old, c_old), which the question's convention requires."),
    ("import_error", "does not import: ZeroDivisionError: division by zero (line 2 of import_error.py)."),
    ("wrong_count", "lstm must return 4 values, but returned 3 values."),
    ("float32", "gradcheck runs in float64 only"),
])
def test_unusable_input_is_one_line_with_exit_2(tmp_path, capsys, case, expected):
    if case == "missing":
        args = ["--impl", write(tmp_path, case, drop=("lstm",))]
    elif case == "import_error":
        (tmp_path / f"{case}.py").write_text("import numpy as np\n1 / 0\n")
        args = ["--impl", str(tmp_path / f"{case}.py")]
    elif case == "wrong_count":
        args = ["--impl", write(tmp_path, case, "    return y, h, c, cache\n", "    return y, h, c\n",
                                drop=("lstm_loss", "dlstm_loss"))]
    else:
        args = ["--dtype", "float32"]
    code, out, err = cli(capsys, *args, *SMALL)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("lstm-compare: error: ") and expected in err
    assert "Traceback" not in err


def test_the_python_api_raises_usage_error_for_float32():
    with pytest.raises(UsageError):
        gradcheck(handrolled, ProblemSpec(dtype="float32"))


def test_code_that_modifies_params_in_place_gets_copies_and_still_agrees(tmp_path, capsys):
    """Every loss evaluation gets its own parameters: a scribble cannot drift into the next perturbed loss."""
    scribbles = write(tmp_path, "scribbles", "    return y, h, c, cache\n",
                      '    params["bf"] += 1e-3\n    return y, h, c, cache\n')
    code, out, _ = cli(capsys, "--impl", scribbles, *SMALL)
    assert code == 0, out
