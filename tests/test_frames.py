"""``Report.frame()`` and ``Report.first_divergence_frame()``: the reports as DataFrames, for a notebook (issue 12)."""

import pytest

import lstm_compare
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.output.report import DIVERGENCE_COLUMNS, FIRST_DIVERGENCE_COLUMNS, write_reports

FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")


@pytest.fixture
def forget_bug_report(tmp_path, monkeypatch):
    """lstm_compare.run on the forget-gate bug, from a working folder that must stay empty."""
    (tmp_path / "impl").mkdir()
    path = FORGET_BUG.write(tmp_path / "impl")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return lstm_compare.run(path, lstm_compare.Config(spec=lstm_compare.ProblemSpec(steps=12))), work


def test_compare_run_writes_no_file(forget_bug_report, tmp_path):
    report, work = forget_bug_report
    assert report.diverged
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["impl", "work"]


def test_the_frames_hold_exactly_what_the_csvs_hold(forget_bug_report, tmp_path):
    report, _ = forget_bug_report
    frames = (report.frame(), report.first_divergence_frame())
    assert list(frames[0].columns) == DIVERGENCE_COLUMNS and list(frames[1].columns) == FIRST_DIVERGENCE_COLUMNS
    for frame, path in zip(frames, write_reports(report, tmp_path / "out")):
        assert frame.to_csv(index=False, lineterminator="\n") == path.read_text()


def test_the_first_divergence_frame_locates_the_forget_gate_bug(forget_bug_report):
    report, _ = forget_bug_report
    first = report.first_divergence_frame().set_index(["reference", "mode"])
    assert first.loc[("torch", "isolated"), ["phase", "step", "gate", "tensor"]].tolist() == ["backward", 11, "f",
                                                                                              "dWf"]
    rows = report.frame().query("reference == 'jax' and mode == 'isolated' and diverged")
    assert rows.iloc[0][["phase", "step", "tensor"]].tolist() == ["backward", 11, "dWf"]
