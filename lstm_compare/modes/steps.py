"""The step modes (isolated, chained): the user's step functions run and measured against each reference."""

from typing import TYPE_CHECKING, Sequence

import numpy as np

from lstm_compare.modes.backward import backward_pass
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.forward import forward_pass
from lstm_compare.modes.records import TracedReferences

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem
    from lstm_compare.usercode.conventions.base import Binding


def compare_steps(implementation: "Binding", problem: "Problem", truth_problem: "Problem", refs: TracedReferences,
                  modes: Sequence[str], collector: "Collector", forward_names: Sequence[str] | None = None,
                  backward_names: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
    """Run and measure the step modes (isolated, chained) among ``modes``; returns, per run of the steps, the
    dtype of each tensor they returned (as empty arrays of that dtype: what ``precision_note`` reads).

    ``forward_names`` and ``backward_names``: the tensors compared (default: all the binding observes).  Memory
    does not hold what has been measured: each forward run is measured as it goes (``ForwardStream``), and once
    the forward is measured, ``refs``' traces are replaced in place by ones without the per-step forward tensors
    that only the forward compares (``slimmed``).
    """
    if forward_names is None:  # what the binding observes and every reference traces (m: projected cells only)
        forward_names = [name for name in implementation.forward_names
                         if name.startswith("cache.") or all(name in ref.truth.forward for ref in refs)]
    backward_names = implementation.backward_names if backward_names is None else backward_names
    chained, isolated, dtypes = forward_pass(implementation, problem, truth_problem, refs, tuple(modes), collector,
                                         forward_names)
    backward_pass(implementation, problem, truth_problem, refs, chained, isolated, collector, backward_names)
    return dtypes
