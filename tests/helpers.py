"""Helpers shared by the test modules: buggy seed-convention files, the CLI run in-process, CSV rows."""

import csv
import inspect

import pytest

import handrolled.seed_lstm
from compare.cli import main

SEED_SOURCE = inspect.getsource(handrolled.seed_lstm)


def write_impl(tmp_path, name, *edits):
    """handrolled/seed_lstm.py with each (old, new) replacement made exactly once, as tmp_path/<name>.py."""
    text = SEED_SOURCE
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in handrolled/seed_lstm.py"
        text = text.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def report_cli(capsys, *args):
    """Run ``lstm-compare report`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
