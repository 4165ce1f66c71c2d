"""Compare an LSTM in the question's convention with PyTorch and JAX, tensor by tensor, step by step.

``lstm_compare.run(impl, Config(...)) -> Report`` is the Python API the command line calls;
``lstm_compare.assert_lstm_matches(impl, ...)`` is the same comparison as an assertion for pytest.
"""

from lstm_compare.frontends.assertions import assert_lstm_matches
from lstm_compare.lstm.where import MODES
from lstm_compare.modes.records import Config, Report
from lstm_compare.modes.pipeline import run
from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH, EXIT_UNUSABLE, UsageError
from lstm_compare.lstm.problem import ProblemSpec, make_problem

__all__ = ["EXIT_DIVERGED", "EXIT_MATCH", "EXIT_UNUSABLE", "MODES", "Config", "ProblemSpec", "Report",
           "UsageError", "assert_lstm_matches", "make_problem", "run"]
