"""The sequence mode: the user's whole-sequence functions against each reference's totals."""

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.lstm.cell import BACKWARD_ORDER, FORWARD_ORDER, PARAM_GRADS
from lstm_compare.lstm.where import Phase
from lstm_compare.measuring.measure import expectation
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
    whole = {"loss": np.array(t.loss), "dh0": t.dh0, "dc0": t.dc0}
    return [-1], (whole[name] if name in whole else t.grads[name[1:]])[None]


def sequence_pass(impl: "Binding", problem: "Problem", refs: TracedReferences, collector: "Collector"
              ) -> "SequenceRun":
    result = drive.sequence(impl, problem)
    for ref in refs:
        phases: tuple[tuple[Phase, Mapping[str, Any], tuple[str, ...]], ...] = (
            ("forward", result.forward, FORWARD_ORDER + ("loss",)),
            ("backward", result.backward, PARAM_GRADS + BACKWARD_ORDER))
        for phase, values, order in phases:
            for name in dict.fromkeys(n for n in order if n in values):
                steps, truth = _sequence_expected(ref.truth, name)
                same = _sequence_expected(ref.same_dtype, name)[1]
                actual = np.asarray(values[name])
                actual = actual if len(steps) > 1 or steps[0] >= 0 else actual[None]
                collector.add(ref.name, "sequence", phase, name, steps, actual,
                              expectation(truth, same, ref.tolerance))
        if result.failure is not None:
            collector.fail(ref.name, "sequence", result.failure)
    return result
