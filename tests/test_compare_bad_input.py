"""Bad input (issue 3, section 8): exceptions and NaN/Inf in the user's code are located findings; an unusable
module or return value is one line on stderr, exit 2, no traceback and no report files.

The implementations are ``lstm_compare/handrolled/question_lstm.py`` with a line or two replaced, written to a temporary file, at
the default sizes T=12 H=5 X=3 O=1 (one JAX compile per dtype).  A step is singled out by the value of the
input's first element, which the user's code sees and which differs at every step.
"""


import numpy as np
import pytest

import lstm_compare
from lstm_compare import Config, ProblemSpec, make_problem
from helpers import QUESTION_SOURCE, read_csv, report_cli, write_impl

T = ProblemSpec().steps  # 12
REFERENCES = ("torch", "jax")
INPUTS = make_problem(ProblemSpec()).inputs  # (T, X), the values the user's code is called with in float64
LSTM_FIRST_LINE = "    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)\n"
DLSTM_RETURN = "    return dparams, dxh[..., -H:], dc * f\n"




def line_of(path, text):
    """The 1-based number of the only line of ``path`` that contains ``text``."""
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


def at_step(t):
    """A condition, in the user's lstm, true exactly at forward step t."""
    return f"x[0] == {float(INPUTS[t, 0])!r}"






# --- exceptions in the user's code are findings ---------------------------------------------------------------

def test_exception_raised_at_forward_step_5_is_a_finding_there_with_its_message(tmp_path, capsys):
    raise_line = f"    if {at_step(5)}:\n        raise ValueError('no value at step five')\n"
    path = write_impl(tmp_path, "raises_at_5", (LSTM_FIRST_LINE, raise_line + LSTM_FIRST_LINE))
    line = line_of(path, "raise ValueError")
    out_dir = tmp_path / "out"
    code, out, err = report_cli(capsys, "--impl", path, "--out", out_dir)
    assert code == 1 and err == ""
    raised = f"ValueError: no value at step five (line {line} of raises_at_5.py)"

    rows = read_csv(out_dir / "first_divergence.csv")
    assert [(r["reference"], r["mode"], r["phase"], r["step"], r["gate"], r["tensor"]) for r in rows] == [
        (reference, mode, "forward", "" if mode == "sequence" else "5", "", "exception")
        for reference in REFERENCES for mode in lstm_compare.MODES]
    messages = [r["message"] for r in rows]
    assert messages == [f"isolated forward step 5: lstm raised {raised}.",
                        f"chained forward step 5: lstm raised {raised}.",
                        f"sequence forward (whole sequence): lstm_loss raised {raised}."] * 2
    for message in messages:
        assert message in out  # the summary says it too

    # Steps 0 ... 4 ran and matched; nothing after the exception was compared, and no backward ran.
    table = read_csv(out_dir / "divergence.csv")
    stepwise = [r for r in table if r["mode"] != "sequence" and r["tensor"] != "exception"]
    assert stepwise and {r["phase"] for r in stepwise} == {"forward"}
    assert {int(r["step"]) for r in stepwise} == set(range(5))
    assert {r["diverged"] for r in stepwise} == {"False"}
    exceptions = [(r["reference"], r["mode"], r["step"], r["diverged"]) for r in table if r["tensor"] == "exception"]
    assert sorted(exceptions) == sorted((ref, mode, "" if mode == "sequence" else "5", "True")
                                        for ref in REFERENCES for mode in lstm_compare.MODES)


def test_exception_raised_in_dlstm_is_a_finding_at_backward_step_t_minus_1(tmp_path):
    path = write_impl(tmp_path, "dlstm_raises", (DLSTM_RETURN, "    raise RuntimeError('backward not done')\n"))
    line = line_of(path, "backward not done")
    report = lstm_compare.run(path, Config())
    raised = f"RuntimeError: backward not done (line {line} of dlstm_raises.py)"
    found = {(f.reference, f.mode): f for f in report.findings}
    for reference in REFERENCES:
        for mode in ("isolated", "chained"):
            f = found[(reference, mode)]
            assert (f.phase, f.step, f.gate, f.tensor) == ("backward", T - 1, "", "exception")
            assert f.message == f"{mode} backward step {T - 1}: dlstm raised {raised}."
        f = found[(reference, "sequence")]
        assert (f.phase, f.step, f.tensor) == ("backward", None, "exception")
        assert f.message == f"sequence backward (whole sequence): dlstm_loss raised {raised}."
    # The whole forward ran and matched in every mode.
    assert not any(d.any_diverged for d in report.diffs if d.phase == "forward")


def test_sys_exit_inside_the_users_lstm_is_a_finding_not_an_exit(tmp_path, capsys):
    path = write_impl(tmp_path, "exits", (LSTM_FIRST_LINE, "    raise SystemExit(0)\n"))
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "out")
    assert code == 1
    rows = read_csv(tmp_path / "out" / "first_divergence.csv")
    assert {(r["phase"], r["step"], r["tensor"]) for r in rows if r["mode"] == "isolated"} == {
        ("forward", "0", "exception")}


# --- NaN and Inf ----------------------------------------------------------------------------------------------

def test_nan_appearing_at_forward_step_3_is_found_there_at_its_first_tensor(tmp_path):
    nan_line = f"    if {at_step(3)}:\n        c_tanh = c_tanh * np.nan\n"
    path = write_impl(tmp_path, "nan_at_3", ("    c_tanh = np.tanh(c)\n", "    c_tanh = np.tanh(c)\n" + nan_line))
    report = lstm_compare.run(path, Config())
    found = {(f.reference, f.mode): f for f in report.findings}
    assert set(found) == {(r, m) for r in REFERENCES for m in lstm_compare.MODES}
    for reference in REFERENCES:
        for mode in ("isolated", "chained"):
            f = found[(reference, mode)]
            assert (f.phase, f.step, f.gate, f.tensor) == ("forward", 3, "", "c_tanh")
            assert np.isnan(f.actual) and np.isfinite(f.expected) and f.max_abs_err == np.inf
            assert f.message.startswith(f"{mode} forward step 3: NaN first appears in c_tanh. worst c_tanh[0] = nan")
        f = found[(reference, "sequence")]  # the person's loop: the first NaN output
        assert (f.phase, f.step, f.tensor) == ("forward", 3, "y")
        assert "NaN first appears in y" in f.message


def test_inf_appearing_at_backward_step_7_is_found_there_at_dc_prev(tmp_path):
    xh_at_7 = f"xh[0] == {float(INPUTS[7, 0])!r}"
    inf_return = f"    return dparams, dxh[..., -H:], dc * f + (np.inf if {xh_at_7} else 0.0)\n"
    path = write_impl(tmp_path, "inf_at_7", (DLSTM_RETURN, inf_return))
    # Without the sequence mode: there inf - inf in the person's own loop gives NaN warnings, which pytest's
    # filterwarnings=error would turn into exceptions; the located Inf is what is pinned here.
    report = lstm_compare.run(path, Config(modes=("isolated", "chained")))
    assert len(report.findings) == 4
    for f in report.findings:
        assert (f.phase, f.step, f.gate, f.tensor) == ("backward", 7, "", "dc_prev")
        assert f.actual == np.inf and f.max_abs_err == np.inf
        assert f.message.startswith(f"{f.mode} backward step 7: Inf first appears in dc_prev. worst dc_prev[0] = inf")
    # Steps T-1 ... 8 matched before it.
    backward = [d for d in report.diffs if d.phase == "backward"]
    assert {(d.reference, d.mode) for d in backward} == {(r, m) for r in REFERENCES for m in ("isolated", "chained")}
    assert all((d.steps > 7).sum() == T - 8 for d in backward)
    for d in backward:
        assert not d.diverged[d.steps > 7].any(), (d.reference, d.mode, d.tensor)


# --- unusable input: exit 2, one line, no traceback, no reports -----------------------------------------------

NOT_IMPORTABLE = {
    "raises_at_import": ("import numpy as np\n\nraise RuntimeError('cannot find my data file')\n",
                         "does not import: RuntimeError: cannot find my data file (line 3 of raises_at_import.py)."),
    "syntax_error": ("def lstm(params, x, h_prev, c_prev:\n    return x\n", "does not import: SyntaxError: "),
    "missing_module": ("import numpy as np\nimport no_such_module_for_lstm_compare\n",
                       "does not import: ModuleNotFoundError: No module named 'no_such_module_for_lstm_compare' "
                       "(line 2 of missing_module.py)."),
    "exits_at_import": ("import sys\nsys.exit('bye')\n",
                        "does not import: SystemExit: bye (line 2 of exits_at_import.py)."),
}


@pytest.mark.parametrize("name", NOT_IMPORTABLE)
def test_module_that_does_not_import_is_one_line_and_exit_2(tmp_path, capsys, name):
    source, problem = NOT_IMPORTABLE[name]
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "out")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"lstm-compare: error: {path} {problem}"), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


CACHE_FIELDS_LINE = next(line for line in QUESTION_SOURCE.splitlines(keepends=True) if line.startswith("CACHE_FIELDS"))
LSTM_START = QUESTION_SOURCE.index("def lstm(")
LSTM_SIGNATURE = QUESTION_SOURCE[LSTM_START:QUESTION_SOURCE.index(":\n", LSTM_START) + 1]  # annotated, over two lines
BROKEN = {
    "no_lstm": ([("def lstm(params", "def lstm_step(params")],
                "{path} has no function lstm(params, inp, h_old, c_old), which the question's convention requires."),
    "no_dlstm": ([("def dlstm(params", "def backward(params")],
                 "{path} has no function dlstm(params, dy, dh_next, dc_next, cache), which the question's convention "
                 "requires."),
    "lstm_returns_3": ([("    return y, h, c, cache\n", "    return y, h, c\n")],
                       "lstm must return 4 values, but returned 3 values."),
    "lstm_returns_none": ([("    return y, h, c, cache\n", "    cache = cache\n")],
                          "lstm must return 4 values, but returned NoneType."),
    "dlstm_returns_2": ([(DLSTM_RETURN, "    return dparams, dxh[..., -H:]\n")],
                        "dlstm must return 3 values, but returned 2 values."),
    "dh_prev_whole_dxh": ([(DLSTM_RETURN, "    return dparams, dxh, dc * f\n")],
                          f"dh_prev returned by dlstm at step {T - 1} has shape (8,); expected (5,)."),
    "y_of_integers": ([('y = h @ params["Wy"] + params["by"]', 'y = (h @ params["Wy"] + params["by"]).astype(int)')],
                      "y returned by lstm at step 0 has dtype int64; a floating-point array is required."),
    "dparams_without_by": ([('        "by": _sum_batch(dy),\n', "")],
                           f"dparams returned by dlstm at step {T - 1} has no entry 'by'."),
    "dparams_with_a_typo_key": ([('        "by": _sum_batch(dy),\n', '        "by": _sum_batch(dy), "bY": dy,\n')],
                                f"dparams returned by dlstm at step {T - 1} has an entry 'bY' that is not a "
                                "parameter (Wf ... by)."),
    "lstm_of_two_arguments": ([(LSTM_SIGNATURE, "def lstm(params, x):")],
                              "{path}: lstm(params, x) cannot be called as lstm(params, inp, h_old, c_old)."),
    "cache_fields_a_number": ([(CACHE_FIELDS_LINE, "CACHE_FIELDS = 5\n")],
                              "{path}: CACHE_FIELDS must be a tuple of distinct names (strings), one per cache "
                              "entry."),
    "cache_fields_a_string": ([(CACHE_FIELDS_LINE, 'CACHE_FIELDS = "xh"\n')],
                              "{path}: CACHE_FIELDS must be a tuple of distinct names (strings), one per cache "
                              "entry."),
    "cache_fields_repeated": ([(CACHE_FIELDS_LINE, 'CACHE_FIELDS = ("h", "h")\n')],
                              "{path}: CACHE_FIELDS must be a tuple of distinct names (strings), one per cache "
                              "entry."),
}


@pytest.mark.parametrize("name", BROKEN)
def test_wrong_interface_is_one_line_and_exit_2_with_no_reports(tmp_path, capsys, name):
    edits, problem = BROKEN[name]
    path = write_impl(tmp_path, name, *edits)
    out_dir = tmp_path / "out"
    code, out, err = report_cli(capsys, "--impl", path, "--out", out_dir)
    assert (code, out) == (2, "")
    assert err == f"lstm-compare: error: {problem.format(path=path)}\n"
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_missing_implementation_file_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "nowhere.py"
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "out")
    assert (code, out, err) == (2, "", f"lstm-compare: error: {path} does not exist or is not a file.\n")
    assert not (tmp_path / "out").exists()


def test_float64_returned_in_a_float32_run_is_fine(tmp_path):
    """More precision than asked: xh promoted to float64 makes every later tensor float64."""
    path = write_impl(tmp_path, "promotes", (LSTM_FIRST_LINE, LSTM_FIRST_LINE + "    xh = xh.astype(np.float64)\n"))
    report = lstm_compare.run(path, Config(spec=ProblemSpec(dtype="float32")))
    assert [f.message for f in report.findings] == []


def test_batch_flag_on_a_file_for_single_vectors_is_one_line_and_exit_2(tmp_path, capsys):
    unbatched = ("    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)\n",
                 "    assert x.ndim == 1, 'one vector at a time'\n    xh = np.concatenate([x, h_prev], axis=-1)\n")
    path = write_impl(tmp_path, "unbatched", unbatched)
    code, out, err = report_cli(capsys, "--impl", path, "--batch", "4", "--out", tmp_path / "out")
    assert (code, out) == (2, "")
    assert err.startswith(f"lstm-compare: error: {path} takes single vectors only (a one-step probe with a (4, 3) "
                          "batch failed: lstm raised AssertionError: one vector at a time")
    assert err.endswith("; leave out --batch.\n") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_file_that_imports_its_sibling_module_loads(tmp_path):
    (tmp_path / "my_gates.py").write_text("import numpy as np\n\ndef squash(z):\n    return np.tanh(z)\n")
    path = write_impl(tmp_path, "with_sibling",
                      ("import numpy as np\n", "import numpy as np\nfrom my_gates import squash\n"),
                      ("c_tanh = np.tanh(c)", "c_tanh = squash(c)"))
    report = lstm_compare.run(path, Config(references=("torch",), modes=("isolated",)))
    assert report.findings == ()


def test_an_exception_after_an_earlier_divergence_is_still_reported(tmp_path, capsys):
    """The first finding is the forward divergence; dlstm's exception comes later and must not vanish."""
    path = write_impl(tmp_path, "diverges_then_raises", ("c = f * c_prev + i * g", "c = f * c_prev + g"),
                      (DLSTM_RETURN, "    raise RuntimeError('backward not written yet')\n"))
    code, out, _ = report_cli(capsys, "--impl", path, "--reference", "torch", "--out", tmp_path / "out")
    assert code == 1
    rows = [r for r in read_csv(tmp_path / "out" / "divergence.csv") if r["tensor"] == "exception"]
    assert {(r["mode"], r["phase"], r["step"]) for r in rows} == {("isolated", "backward", str(T - 1)),
                                                                  ("chained", "backward", str(T - 1)),
                                                                  ("sequence", "backward", "")}
    assert ("torch, isolated, later: isolated backward step 11: dlstm raised RuntimeError: backward not written "
            "yet") in out
