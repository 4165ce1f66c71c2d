"""Batch-only bugs are looked for by default where the convention is batched (issue 20, item 7): cs231n's, Karpathy's
and declared rows or columns run with two rows unless told otherwise; a file that cannot take them says so."""

import inspect

import lstm_compare.handrolled.cs231n_lstm
from lstm_compare import Config, ProblemSpec, run
from helpers import write_edited

CS231N = inspect.getsource(lstm_compare.handrolled.cs231n_lstm)
SPEC = ProblemSpec(steps=4, hidden=3, inputs=2)


def test_a_bias_gradient_averaged_over_the_batch_is_found_with_the_default_flags(tmp_path):
    path = write_edited(tmp_path, "db_mean", CS231N, ("    db = da.sum(axis=0)\n", "    db = da.mean(axis=0)\n"))
    report = run(path, Config(spec=SPEC, references=("torch",)))
    assert report.config.spec.batch == 2 and "B=2" in report.config.spec.label()
    assert [(f.mode, f.phase, f.step, f.tensor) for f in report.findings][:2] == [
        ("isolated", "backward", 3, "dbo"), ("chained", "backward", 3, "dbo")]  # the first bias in backward order


def test_a_batched_convention_that_cannot_take_two_rows_runs_one_and_says_so(tmp_path):
    one_row = ("    H = prev_h.shape[1]\n    a = x @ Wx",
               "    H = prev_h.shape[1]\n    assert x.shape[0] == 1, 'one row only'\n    a = x @ Wx")
    path = write_edited(tmp_path, "one_row", CS231N, one_row)
    report = run(path, Config(spec=SPEC, references=("torch",)))
    assert report.config.spec.batch is None and report.findings == ()
    assert any(note.startswith("batches could not be exercised (a one-step probe with a (2, 2) batch failed: "
                               "lstm_step_forward raised AssertionError: one row only") for note in report.notes)


def test_the_questions_convention_keeps_single_vectors_unless_asked(tmp_path):
    report = run(lstm_compare.handrolled, Config(spec=SPEC, references=("torch",)))
    assert report.config.spec.batch is None
