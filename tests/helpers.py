"""Helpers shared by the test modules: mutated question's-convention files and modules (the one way tests build them),
the CLI run in-process, CSV rows."""

import csv
import inspect
import types

import pytest

import lstm_compare.handrolled.question_lstm
from lstm_compare.frontends.cli import main

QUESTION_SOURCE = inspect.getsource(lstm_compare.handrolled.question_lstm)


def edited(text, *edits):
    """``text`` with each (old, new) replacement made; each ``old`` must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once"
        text = text.replace(old, new)
    return text


def mutated_source(*edits):
    """lstm_compare/handrolled/question_lstm.py with each (old, new) replacement made; each ``old`` must occur exactly once."""
    return edited(QUESTION_SOURCE, *edits)


def write_edited(tmp_path, name, text, *edits):
    """``edited(text, *edits)`` written to tmp_path/<name>.py (any convention's source); returns the path."""
    path = tmp_path / f"{name}.py"
    path.write_text(edited(text, *edits))
    return path


def without(*functions):
    """Edits that hide the named functions from the harness (renamed ``_unused_<name>``)."""
    return tuple((f"def {name}(", f"def _unused_{name}(") for name in functions)


def write_impl(tmp_path, name, *edits):
    """``mutated_source(*edits)`` written to tmp_path/<name>.py (for the command line); returns the path."""
    return write_edited(tmp_path, name, QUESTION_SOURCE, *edits)


def impl_module(name, *edits):
    """``mutated_source(*edits)`` as a fresh module object (for the Python API)."""
    module = types.ModuleType(name)
    exec(compile(mutated_source(*edits), f"<{name}>", "exec"), module.__dict__)
    return module


def report_cli(capsys, *args):
    """Run ``lstm-compare report`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
