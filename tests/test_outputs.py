"""What the reports promise on disk (issue 9: 7, 8, 9, 10, 13, 15): one run's files appear together or not at all,
no temporary survives an interruption, stale files of an earlier run go, --out is fixed and checked at start,
and a huge message is shortened on the terminal and in pictures but kept whole in the CSV."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lstm_compare.frontends.cli import main
from lstm_compare.errors import UsageError
from lstm_compare.output.atomic import Output, commit, csv_output, write_csv_atomically
from helpers import read_csv, report_cli, write_impl

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = "previous report\n"
RAISES_HUGE = ("    H = h.shape[-1]\n", "    H = h.shape[-1]\n    raise ValueError('x' * 1_000_000)\n")  # in dlstm


def temporaries(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_reports_are_written_leaves_the_previous_ones_and_no_temporary(tmp_path, signum):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("divergence.csv", "first_divergence.csv"):
        (out / name).write_text(PREVIOUS)
    process = subprocess.Popen([sys.executable, "-m", "lstm_compare", "report", "--steps", "3000", "--hidden", "16",
                                "--reference", "torch", "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not temporaries(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert temporaries(out), "the report finished before a temporary file was seen"
    os.kill(process.pid, signum)
    process.communicate(timeout=60)
    assert process.returncode != 0
    assert temporaries(out) == []
    assert (out / "divergence.csv").read_text() == PREVIOUS == (out / "first_divergence.csv").read_text()


def test_a_stale_temporary_of_a_dead_process_is_removed_at_the_next_write_and_others_are_kept(tmp_path):
    dead = tmp_path / ".divergence.csv.999999999.abc123.tmp"  # above any pid_max: that process cannot exist
    alive = tmp_path / f".divergence.csv.{os.getppid()}.abc123.tmp"  # a process that exists: perhaps writing
    foreign = tmp_path / ".someone-elses.tmp"
    for path in (dead, alive, foreign):
        path.write_text("partial")
    write_csv_atomically(pd.DataFrame({"a": [1]}), tmp_path / "divergence.csv")
    assert temporaries(tmp_path) == sorted([alive.name, foreign.name])


def test_a_failure_while_writing_one_file_leaves_every_earlier_file_as_it_was(tmp_path):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(PREVIOUS)

    def fails(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(UsageError, match="cannot write .*second.csv: No space left on device"):
        commit([csv_output(pd.DataFrame({"a": [1]}), first), Output(second, fails)])
    assert first.read_text() == PREVIOUS and not second.exists() and temporaries(tmp_path) == []


def test_report_checks_every_target_before_any_work_and_writes_nothing_when_one_is_a_folder(tmp_path, capsys):
    (tmp_path / "divergence.csv").write_text(PREVIOUS)
    (tmp_path / "first_divergence.csv").mkdir()
    start = time.monotonic()
    code, out, err = report_cli(capsys, "--out", tmp_path)
    assert (code, out) == (2, "") and err.count("\n") == 1 and "first_divergence.csv: it is a folder" in err
    assert time.monotonic() - start < 5  # refused before the comparison ran
    assert (tmp_path / "divergence.csv").read_text() == PREVIOUS


def test_run_refuses_before_any_work_when_catalog_csv_cannot_be_written_and_keeps_suite_csv(tmp_path, capsys):
    (tmp_path / "suite.csv").write_text(PREVIOUS)
    (tmp_path / "catalog.csv").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--quick", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "catalog.csv: it is a folder" in err
    assert (tmp_path / "suite.csv").read_text() == PREVIOUS


@pytest.mark.parametrize("command", ["report", "run"])
def test_an_unwritable_out_is_refused_in_one_line_before_any_work(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--out", "/proc/lstm-compare-reports"])  # /proc takes no new files, even from root
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("lstm-compare: error: cannot write reports to /proc/lstm-compare-reports: /proc is not "
                          "writable")


def test_a_clean_report_removes_the_heatmaps_of_an_earlier_diverging_run(tmp_path, capsys):
    stale = [tmp_path / "heatmap-torch-isolated.png", tmp_path / "heatmap-jax-sequence.png"]
    for path in stale:
        path.write_bytes(b"\x89PNG stale")
    (tmp_path / "notes.txt").write_text("mine")
    code, _, _ = report_cli(capsys, "--out", tmp_path, "--steps", "2", "--reference", "torch")
    assert code == 0
    assert not any(p.exists() for p in stale) and (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["divergence.csv", "first_divergence.csv", "notes.txt"]


def test_heatmaps_are_written_through_temporaries_like_the_csvs(tmp_path, capsys, monkeypatch):
    """A failure while drawing leaves the earlier picture whole (not a 0-byte PNG) and no temporary."""
    picture = tmp_path / "heatmap-torch-isolated.png"
    picture.write_bytes(b"\x89PNG earlier")
    monkeypatch.setattr("lstm_compare.output.plot.draw", lambda heat: (_ for _ in ()).throw(OSError(28, "No space left")))
    code, _, err = report_cli(capsys, "--out", tmp_path, "--steps", "2", "--reference", "torch", "--plot")
    assert code == 2 and "No space left" in err
    assert picture.read_bytes() == b"\x89PNG earlier" and temporaries(tmp_path) == []


def test_out_is_fixed_at_start_so_user_code_that_changes_directory_cannot_move_the_reports(tmp_path, capsys,
                                                                                          monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = write_impl(tmp_path, "wanders", ("import numpy as np\n", f"import numpy as np\nimport os\n"
                                                                     f"os.chdir({str(elsewhere)!r})\n"))
    monkeypatch.chdir(tmp_path)
    code, out, _ = report_cli(capsys, "--impl", path, "--steps", "2", "--reference", "torch", "--out", "reports")
    assert code == 0
    assert (tmp_path / "reports" / "divergence.csv").is_file() and not (elsewhere / "reports").exists()
    assert out.splitlines()[-1] == "Reports: reports/divergence.csv, reports/first_divergence.csv"


def test_a_huge_message_is_shortened_on_the_terminal_and_in_pictures_but_whole_in_the_csv(tmp_path, capsys):
    path = write_impl(tmp_path, "raises_huge", RAISES_HUGE)
    start = time.monotonic()
    code, out, _ = report_cli(capsys, "--impl", path, "--out", tmp_path / "out", "--reference", "torch", "--plot")
    assert code == 1 and time.monotonic() - start < 60
    assert max(len(line) for line in out.splitlines()) < 1200 and "more characters]" in out
    messages = pd.read_csv(tmp_path / "out" / "first_divergence.csv")["message"]
    assert len(messages) == 3 and all(len(message) > 1_000_000 for message in messages)
    assert (tmp_path / "out" / "heatmap-torch-isolated.png").stat().st_size < 500_000
