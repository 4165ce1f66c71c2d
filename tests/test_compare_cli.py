"""`lstm-compare report` (also `python -m lstm_compare report`): exit codes, flags, the summary, and the two CSV reports
with exactly the columns issue 3 lists.

Most runs call ``lstm_compare.frontends.cli.main`` in-process (it ends in ``sys.exit``); two run the real command in a
subprocess, where stderr shows everything a person would see.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import lstm_compare
from lstm_compare.frontends.commands.common import own_implementation
from lstm_compare import ProblemSpec
from lstm_compare.frontends.cli import main
from lstm_compare import handrolled
from lstm_compare.usercode.conventions import bind
from lstm_compare.lstm.cell import PARAM_GRADS
from helpers import read_csv, report_cli, write_impl

ROOT = Path(__file__).resolve().parents[1]
T = ProblemSpec().steps  # 12
DIVERGENCE_HEADER = ("reference,mode,layer,direction,phase,step,gate,tensor,shape,max_abs_err,max_rel_err,worst_index,user_element,"
                     "actual,expected,n_mismatch,n_total,tolerance,noise_floor,diverged")
FIRST_DIVERGENCE_HEADER = "reference,mode,layer,direction,phase,step,gate,tensor,max_abs_err,max_rel_err,tolerance,message"
OVERWRITES_DPARAMS = ("dparams[name] += value", "dparams[name] = value")  # the person's loop: = instead of +=
C_FROM_H = ("c = f * c_prev + i * g", "c = f * h_prev + i * g")  # the c_prev path: invisible from a zero state
DH_PREV_WHOLE_DXH = ("    return dparams, dxh[..., -H:], dc * f\n", "    return dparams, dxh, dc * f\n")








def first_rows(out_dir):
    return [(r["reference"], r["mode"], r["phase"], r["step"], r["tensor"])
            for r in read_csv(out_dir / "first_divergence.csv")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_lstm_exits_0_with_header_only_first_divergence_and_every_row(tmp_path, capsys, dtype):
    out_dir = tmp_path / "reports"
    code, out, err = report_cli(capsys, "--dtype", dtype, "--out", out_dir)
    assert (code, err) == (0, "")
    assert (out_dir / "first_divergence.csv").read_text() == FIRST_DIVERGENCE_HEADER + "\n"
    builtin = own_implementation()
    first, *lines = out.splitlines()
    assert first == f"lstm-compare: no --impl given, so this checks the tool's own LSTM, {builtin}"
    assert lines[0] == f"lstm-compare: {builtin} against torch, jax (T=12 H=5 X=3 O=1 {dtype} seed=0)"
    assert [line.split()[:3] for line in lines[1:7]] == [
        [reference, mode, "match"] for reference in ("torch", "jax") for mode in lstm_compare.MODES]
    assert lines[-2] == "No divergence: every compared tensor is within tolerance of both references."
    assert lines[-1] == f"Reports: {out_dir / 'divergence.csv'}, {out_dir / 'first_divergence.csv'}"

    text = (out_dir / "divergence.csv").read_text()
    assert text.splitlines()[0] == DIVERGENCE_HEADER
    rows = read_csv(out_dir / "divergence.csv")
    # One row per reference x mode x phase x step x tensor: every tensor at every step, then the sequence mode's
    # per-step y, its loss, the final h and c, and its ten gradient totals.
    backward = bind(handrolled).backward_names  # the question's: dWf ... dby, dh_prev, dc_prev
    forward = bind(handrolled).forward_names  # FORWARD_ORDER less what a cell without a projection lacks (m)
    per_reference = 2 * T * (len(forward) + len(backward)) + T + 3 + len(PARAM_GRADS)
    assert len(rows) == 2 * per_reference
    assert {r["diverged"] for r in rows} == {"False"}
    assert {r["n_mismatch"] for r in rows} == {"0"}
    # step is empty exactly for the whole-sequence values.
    totals = [r for r in rows if r["step"] == ""]
    assert {(r["mode"], r["phase"], r["tensor"]) for r in totals} == {
        ("sequence", "forward", name) for name in ("loss", "h_last", "c_last")} | {
        ("sequence", "backward", name) for name in PARAM_GRADS}
    assert len(totals) == 2 * (3 + len(PARAM_GRADS))
    # Rows run in computation order: the first reference's isolated forward step 0, tensor by tensor.
    head = [(r["reference"], r["mode"], r["phase"], r["step"], r["tensor"]) for r in rows[:len(forward)]]
    assert head == [("torch", "isolated", "forward", "0", name) for name in forward]
    noise = {float(r["noise_floor"]) for r in rows}
    assert noise == {0.0} if dtype == "float64" else max(noise) > 0  # the noise floor is zero only in float64


def test_divergence_exits_1_and_whole_sequence_findings_have_an_empty_step(tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = report_cli(capsys, "--impl", write_impl(tmp_path, "overwrites", OVERWRITES_DPARAMS),
                                "--out", out_dir)
    assert (code, err) == (1, "")
    assert (out_dir / "first_divergence.csv").read_text().splitlines()[0] == FIRST_DIVERGENCE_HEADER
    rows = read_csv(out_dir / "first_divergence.csv")
    assert [(r["reference"], r["mode"], r["phase"], r["step"], r["gate"], r["tensor"]) for r in rows] == [
        ("torch", "sequence", "backward", "", "", "dWy"), ("jax", "sequence", "backward", "", "", "dWy")]
    for r in rows:
        assert r["message"].startswith("sequence backward (whole sequence): the outputs and the loss match; "
                                       "dWy, dby, dWo, dbo, dWf, dbf, dWi, dbi, dWg, dbg diverge: the sequence loop")
        assert float(r["max_abs_err"]) > 1e6 * float(r["tolerance"])
        assert f"{r['reference']}, sequence: {r['message']}" in out.splitlines()
    assert "  torch  sequence  DIVERGED" in out and "first: backward (whole sequence), dWy" in out


def test_zero_state_moves_a_c_prev_path_bug_from_step_0_to_step_1(tmp_path, capsys):
    path = write_impl(tmp_path, "c_from_h", C_FROM_H)
    code, out, _ = report_cli(capsys, "--impl", path, "--out", tmp_path / "random")
    assert code == 1
    assert ("torch", "isolated", "forward", "0", "c") in first_rows(tmp_path / "random")
    code, out, _ = report_cli(capsys, "--impl", path, "--zero-state", "--out", tmp_path / "zero")
    assert code == 1 and out.splitlines()[0].endswith("(T=12 H=5 X=3 O=1 float64 seed=0 zero-state)")
    found = {(reference, mode): (phase, step, tensor)
             for reference, mode, phase, step, tensor in first_rows(tmp_path / "zero")}
    for reference in ("torch", "jax"):
        for mode in ("isolated", "chained"):
            assert found[(reference, mode)] == ("forward", "1", "c")


def test_reference_torch_alone_compares_and_reports_torch_only(tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, _ = report_cli(capsys, "--impl", write_impl(tmp_path, "c_from_h", C_FROM_H), "--reference", "torch",
                              "--out", out_dir)
    assert code == 1
    assert out.splitlines()[0].startswith(f"lstm-compare: {tmp_path / 'c_from_h.py'} against torch (")
    assert [row[:2] for row in first_rows(out_dir)] == [("torch", mode) for mode in lstm_compare.MODES]
    assert {r["reference"] for r in read_csv(out_dir / "divergence.csv")} == {"torch"}


def test_batch_4_on_handrolled_exits_0_with_batched_shapes(tmp_path, capsys):
    code, _, _ = report_cli(capsys, "--batch", "4", "--out", tmp_path)
    assert code == 0
    rows = read_csv(tmp_path / "divergence.csv")
    assert {r["shape"] for r in rows if r["tensor"] == "h"} == {"(4, 5)"}
    assert {r["shape"] for r in rows if r["tensor"] == "y"} == {"(4, 1)"}
    assert {r["shape"] for r in rows if r["tensor"] == "dWf"} == {"(8, 5)"}


@pytest.mark.parametrize("flags, error", [
    (["--steps", "0"], "argument --steps: 0 is below the minimum of 1"),
    (["--steps", "abc"], "argument --steps: 'abc' is not a whole number"),
    (["--batch", "0"], "argument --batch: 0 is below the minimum of 1"),
    (["--seed", "-1"], "argument --seed: -1 is below the minimum of 0"),
    (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16' (choose from 'float64', 'float32')"),
    (["--reference", "nope"], "argument --reference: 'nope': choose one or more of "),
    (["--reference", ","], "argument --reference: ',': choose one or more of "),
])
def test_bad_flag_exits_2_with_one_clear_error_line(tmp_path, capsys, flags, error):
    code, out, err = report_cli(capsys, *flags, "--out", tmp_path / "out")
    assert (code, out) == (2, "")
    # One line, no usage block, no traceback: the error, then where to read more.
    assert err.count("\n") == 1 and err.startswith(f"lstm-compare report: error: {error}")
    assert err.endswith("(see lstm-compare report --help).\n")
    assert not (tmp_path / "out").exists()


def test_out_naming_an_existing_file_exits_2_with_one_line(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a directory\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--out", str(taken)])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith("lstm-compare: error: ")
    assert taken.read_text() == "not a directory\n"


# --- the real command, in a subprocess -------------------------------------------------------------------------

def run_command(*args):
    return subprocess.run([sys.executable, "-m", "lstm_compare", "report", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_python_m_compare_report_writes_the_same_bytes_as_an_in_process_run(tmp_path, capsys):
    path = write_impl(tmp_path, "overwrites", OVERWRITES_DPARAMS)
    result = run_command("--impl", path, "--out", tmp_path / "sub")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    code, out, _ = report_cli(capsys, "--impl", path, "--out", tmp_path / "here")
    assert code == 1
    assert result.stdout.replace(str(tmp_path / "sub"), "OUT") == out.replace(str(tmp_path / "here"), "OUT")
    for name in ("divergence.csv", "first_divergence.csv"):
        assert (tmp_path / "sub" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


def test_python_m_compare_report_on_a_wrong_shape_prints_one_line_and_leaves_no_files(tmp_path):
    """Found only in backward, after the reference ran: stderr still holds that one line and nothing else.

    torch alone keeps this run short; the run above checks that both references leave stderr empty.
    """
    path = write_impl(tmp_path, "dh_prev_whole_dxh", DH_PREV_WHOLE_DXH)
    result = run_command("--impl", path, "--reference", "torch", "--out", tmp_path / "out")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"lstm-compare: error: dh_prev returned by dlstm at step {T - 1} has shape (8,); "
                             "expected (5,).\n")
    assert not (tmp_path / "out").exists()


def test_version_exits_0_and_help_ends_with_every_exit_code(capsys):
    from lstm_compare.errors import EXIT_CODES

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"lstm-compare {lstm_compare.__version__}\n"
    for argv in (["--help"], ["report", "--help"], ["gradcheck", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        epilog = text[text.index("exit codes:"):].splitlines()[1:]
        assert [int(line.split()[0]) for line in epilog] == [code for code, _ in EXIT_CODES] == [0, 1, 2, 130, 141, 143]
        assert "seed convention" not in text and "seed-convention" not in text


def test_progress_goes_to_a_terminals_stderr_after_the_delay_and_never_to_stdout(capsys):
    import time

    from lstm_compare.frontends.progress import progress

    with progress("comparing", delay=60.0) as update:  # not a terminal: nothing at all
        update("step", 1, 2)
    with progress("comparing", delay=0.0, force=True) as update:
        time.sleep(0.3)
        update("checking bug x", 1, 2)
        time.sleep(0.3)
    with progress("quick", delay=60.0, force=True):  # over before the delay: nothing shown
        pass
    out, err = capsys.readouterr()
    assert out == "" and "checking bug x" in err and "quick" not in err
