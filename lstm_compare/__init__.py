"""Compare a hand-written NumPy LSTM with PyTorch and JAX, tensor by tensor, step by step.

    report = lstm_compare.run("my_lstm.py")               # or run(globals()): a notebook's own functions
    lstm_compare.assert_lstm_matches("my_lstm.py", steps=12)
    lstm_compare.gradcheck("my_lstm.py").passed

Importing this package imports nothing else: each name below is imported on first use (PEP 562), so that the
pytest plugin (``lstm_compare.pytest_plugin``, loaded in every pytest session of the environment) costs nothing.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH, EXIT_UNUSABLE, UsageError
    from lstm_compare.frontends.api import gradcheck
    from lstm_compare.frontends.assertions import assert_lstm_matches, compare_lstm
    from lstm_compare.frontends.fixture import LstmCompare
    from lstm_compare.lstm.problem import ProblemSpec, make_problem
    from lstm_compare.lstm.where import MODES
    from lstm_compare.modes.pipeline import run
    from lstm_compare.modes.records import Config, Report
    from lstm_compare.modes.gradcheck import GradCheck

__version__ = "0.1.0"  # pyproject.toml reads it from here

# public name -> the module that defines it
_HOMES = {
    "EXIT_DIVERGED": "lstm_compare.errors", "EXIT_MATCH": "lstm_compare.errors", "EXIT_UNUSABLE": "lstm_compare.errors",
    "UsageError": "lstm_compare.errors",
    "gradcheck": "lstm_compare.frontends.api",
    "assert_lstm_matches": "lstm_compare.frontends.assertions", "compare_lstm": "lstm_compare.frontends.assertions",
    "LstmCompare": "lstm_compare.frontends.fixture",
    "ProblemSpec": "lstm_compare.lstm.problem", "make_problem": "lstm_compare.lstm.problem",
    "MODES": "lstm_compare.lstm.where", "Config": "lstm_compare.modes.records", "Report": "lstm_compare.modes.records",
    "run": "lstm_compare.modes.pipeline",
    "GradCheck": "lstm_compare.modes.gradcheck",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lstm_compare' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
