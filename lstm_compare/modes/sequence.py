"""The sequence mode: the user's whole-sequence functions against each reference's totals."""

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.lstm.cell import BACKWARD_ORDER, FORWARD_ORDER, PARAM_GRADS, SEQUENCE_FORWARD_TOTALS
from lstm_compare.lstm.where import Phase
from lstm_compare.measuring.measure import expectation, widened
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.records import TracedReferences
from lstm_compare.usercode import drive

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem, Trace
    from lstm_compare.usercode.conventions.base import Binding, SequenceRun


def _sequence_expected(trace: "Trace", name: str) -> tuple[np.ndarray | list[int], np.ndarray]:
    """What a reference expects of one whole-sequence result: (steps, array stacked over them)."""
    t = trace.totals
    if name in trace.forward:
        return np.arange(trace.forward[name].shape[0]), trace.forward[name]
    if name == "dx":
        return np.arange(t.dinputs.shape[0]), t.dinputs
    whole = {"loss": np.array(t.loss), "h_last": t.h_last, "c_last": t.c_last, "dh0": t.dh0, "dc0": t.dc0}
    return [-1], (whole[name] if name in whole else t.grads[name[1:]])[None]


def sequence_pass(impl: "Binding", problem: "Problem", refs: TracedReferences, collector: "Collector"
              ) -> "SequenceRun":
    result = drive.sequence(impl, problem)
    for ref in refs:
        phases: tuple[tuple[Phase, Mapping[str, Any], tuple[str, ...]], ...] = (
            ("forward", result.forward, FORWARD_ORDER + SEQUENCE_FORWARD_TOTALS),
            ("backward", result.backward, PARAM_GRADS + BACKWARD_ORDER))
        for phase, values, order in phases:
            for name in dict.fromkeys(n for n in order if n in values):
                steps, truth = _sequence_expected(ref.truth, name)
                same = _sequence_expected(ref.same_dtype, name)[1]
                actual = np.asarray(values[name])
                actual = actual if len(steps) > 1 or steps[0] >= 0 else actual[None]
                expected = expectation(truth, same, ref.tolerance)
                if name == "loss" and ref.same_dtype is not ref.truth:  # float64: the table alone
                    stepwise = stepwise_loss(ref.same_dtype.forward["y"], problem.targets)
                    expected = widened(expected, stepwise[None], ref.tolerance)
                collector.add(ref.name, "sequence", phase, name, steps, actual, expected)
        if result.failure is not None:
            collector.fail(ref.name, "sequence", result.failure)
    return result


def stepwise_loss(y: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The loss as a correct implementation in the dtype of ``y`` may sum it: each step's loss in that dtype, added
    step by step (a running sum, as ``loss += ...`` in a loop), from a reference's outputs ``y`` (T, [B,] O)."""
    dtype = y.dtype
    targets = np.asarray(targets, dtype)
    per_step = ((y - targets) ** 2).mean(axis=-1, dtype=dtype)
    per_step = per_step.reshape(len(per_step), -1).sum(axis=1, dtype=dtype)  # summed over the batch
    return np.cumsum(per_step, dtype=dtype)[-1]
