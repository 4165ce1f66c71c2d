"""Compare a seed-convention LSTM with PyTorch and JAX, tensor by tensor, step by step.

``compare.run(impl, Config(...)) -> Report`` is the Python API the command line calls;
``compare.assert_lstm_matches(impl, ...)`` is the same comparison as an assertion for pytest.
"""

from compare.assertions import assert_lstm_matches
from compare.engine import MODES, Config, Report, run
from compare.errors import EXIT_DIVERGED, EXIT_MATCH, EXIT_UNUSABLE, UsageError
from compare.problem import ProblemSpec, make_problem

__all__ = ["EXIT_DIVERGED", "EXIT_MATCH", "EXIT_UNUSABLE", "MODES", "Config", "ProblemSpec", "Report",
           "UsageError", "assert_lstm_matches", "make_problem", "run"]
