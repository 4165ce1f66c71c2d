"""The step modes' forward pass: each run of the user's forward steps measured as it goes."""

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lstm_compare.lstm.cell import FORWARD_ORDER, GATES
from lstm_compare.lstm.where import Mode
from lstm_compare.measuring.measure import Expectation, TensorDiff, expectation, measure, tensor_diff
from lstm_compare.measuring.tolerance import Tolerance
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.records import ReferenceRun, TracedReferences, paired
from lstm_compare.usercode import drive
from lstm_compare.usercode.conventions.base import PROBE_RTOL

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem, Trace
    from lstm_compare.usercode.conventions.base import Binding
    from lstm_compare.usercode.drive import ForwardRun


# The per-step forward tensors of a reference that the isolated mode feeds (h_prev, c_prev), the backward (the
# parameter gradients' factors, peepholes, a projection) and the sequence mode (h, c, y) still read once the
# forward expectations are made.
KEPT_AFTER_FORWARD = ("h_prev", "c_prev", "h", "c", "y", "m")


def _slim(trace: "Trace") -> "Trace":
    return replace(trace, forward={k: v for k, v in trace.forward.items() if k in KEPT_AFTER_FORWARD})


def slimmed(ref: ReferenceRun) -> ReferenceRun:
    """``ref`` with traces holding only the forward tensors of KEPT_AFTER_FORWARD (the others are let go), and
    without its forward expectations."""
    same = _slim(ref.same_dtype)
    return replace(ref, same_dtype=same, truth=same if ref.truth is ref.same_dtype else _slim(ref.truth),
                   forward_expected=None)


def prepared(ref: ReferenceRun, problem: "Problem", truth_problem: "Problem", names: Sequence[str]) -> ReferenceRun:
    """``ref`` with its forward expectations for ``names`` made (those its traces hold), and the same-dtype
    run's forward tensors that nothing reads after that let go (a float64 run's one trace is the truth: kept)."""
    names = [name for name in names if name.startswith("cache.") or name in ref.truth.forward]
    expected = forward_expectations(ref, problem, truth_problem, names)
    same = ref.same_dtype if ref.same_dtype is ref.truth else _slim(ref.same_dtype)
    return replace(ref, same_dtype=same, forward_expected=expected)


def forward_pass(implementation: "Binding", problem: "Problem", truth_problem: "Problem", refs: TracedReferences,
             modes: tuple[str, ...], collector: "Collector", names: Sequence[str]
             ) -> tuple["ForwardRun | None", dict[str, "ForwardRun"], list[dict[str, np.ndarray]]]:
    """Run and measure the forward of the chained mode (once) and of the isolated mode (once per reference), each
    run measured as it goes; also the dtype of every tensor each run returned (empty arrays).  ``refs`` are
    ``prepared`` first and ``slimmed`` after."""
    refs.lighten(lambda ref: prepared(ref, problem, truth_problem, names) if ref.forward_expected is None else ref)
    expected = {ref.name: {name: ref.forward_expected[name] for name in names} for ref in refs}  # type: ignore[index]

    def measured(targets: list[ReferenceRun], fed: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple["ForwardRun", ForwardStream]:
        stream = ForwardStream(implementation, [(ref, expected[ref.name]) for ref in targets])
        run_ = drive.forward(implementation, problem, fed_states=fed, sink=stream)
        stream.finish()
        return run_, stream

    streams: dict[tuple[str, str], ForwardStream] = {}
    chained = None
    if "chained" in modes:
        chained, stream = measured(list(refs))
        streams.update({(ref.name, "chained"): stream for ref in refs})
    isolated = {}
    for name in refs.names:  # each reference let go of its forward once its last run is measured
        if "isolated" in modes:
            ref = refs[name]
            fed = (ref.same_dtype.forward["h_prev"], ref.same_dtype.forward["c_prev"])
            isolated[name], streams[(name, "isolated")] = measured([ref], fed)
            del ref, fed
        del expected[name]
        refs.lighten_one(name, slimmed)
    results: list[tuple[str, Mode, "ForwardRun", list[TensorDiff]]] = []
    for ref in refs:
        runs: tuple[tuple[Mode, "ForwardRun | None"], ...] = (("isolated", isolated.get(ref.name)),
                                                               ("chained", chained))
        results += [(ref.name, mode, run_, streams[(ref.name, mode)].diffs(ref.name, mode, collector))
                     for mode, run_ in runs if run_ is not None]
    unjudged = set(GATES) if implementation.gates_unjudged else set()  # read off by probes that contradicted c, h
    for name, mode, run_, diffs in results:
        collector.extend(d for d in diffs if d.tensor not in unjudged)
        if run_.failure is not None:
            collector.fail(name, mode, run_.failure)
    return chained, isolated, [stream.dtypes() for stream in dict.fromkeys(streams.values())]


# Forward tensors are measured as a run goes, in batches of steps of about this many elements per tensor.
FORWARD_ELEMENTS_PER_BATCH = 1 << 17


class ForwardStream:
    """The sink of one forward run (``drive.forward``): every few steps, each tensor's new steps are stacked,
    measured against every target reference's expectations, and let go.

    A gate the binding may still come to observe by saturation (``Binding.probed`` only grows) is measured
    with both tolerances, and ``diffs`` takes the one that holds once every run is done: the same figures as
    measuring every run at the end, with the final ``probed``."""

    def __init__(self, implementation: "Binding", targets: list[tuple[ReferenceRun, dict[str, Expectation]]]) -> None:
        self.implementation = implementation
        self.targets = targets
        self.batch = 0  # steps per batch, from the first step's sizes
        self.pending: dict[str, list[np.ndarray]] = {}
        self.done: dict[str, int] = {}  # name -> steps measured so far
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.types: dict[str, np.dtype[Any]] = {}
        # (reference, name) -> per batch, its statistics (with the reference's tolerance, with the probe's)
        self.stats: dict[tuple[str, str], list[tuple[dict[str, np.ndarray] | None,
                                                     dict[str, np.ndarray] | None]]] = {}

    def __call__(self, tensors: Mapping[str, np.ndarray]) -> None:
        for name, value in tensors.items():
            self.pending.setdefault(name, []).append(value)
        if not self.batch and tensors:
            self.batch = max(1, FORWARD_ELEMENTS_PER_BATCH // max(max(v.size for v in tensors.values()), 1))
        if self.pending and max(map(len, self.pending.values())) >= self.batch:
            self.flush()

    def flush(self) -> None:
        probed = self.implementation.probed
        for name, values in self.pending.items():
            if not values:
                continue
            actual = np.stack(values)  # (steps, [B,] n): the i-th time a tensor comes is compared with step i
            start = self.done.get(name, 0)
            self.done[name] = start + len(actual)
            self.shapes[name] = actual.shape[1:]
            self.types[name] = np.result_type(self.types.get(name, actual.dtype), actual.dtype)
            for ref, expected in self.targets:
                if name not in expected:
                    continue
                e = expected[name].rows(slice(start, start + len(actual)))
                probe = probe_tolerance(ref.tolerance)
                pair: tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]
                if probe == ref.tolerance:
                    plain = measure(actual, e)
                    pair = (plain, plain)
                elif name in probed:
                    pair = (None, measure(actual, retolerated(e, probe)))
                else:  # a gate may yet be observed by saturation (probed only grows); other tensors never are
                    pair = (measure(actual, e), measure(actual, retolerated(e, probe)) if name in GATES else None)
                self.stats.setdefault((ref.name, name), []).append(pair)
        self.pending.clear()

    def finish(self) -> None:
        """The run is over: measure what is pending, and let go of the expectations."""
        self.flush()
        self.targets = []

    def diffs(self, reference: str, mode: Mode, collector: "Collector") -> list[TensorDiff]:
        """This run's ``TensorDiff`` against ``reference``, one per tensor in FORWARD_ORDER (all runs done)."""
        self.flush()
        probed = self.implementation.probed
        out = []
        for name in FORWARD_ORDER:
            if (reference, name) in self.stats:
                stats = [pair[1 if name in probed else 0] for pair in self.stats[(reference, name)]]
                where = collector.where(reference, mode, "forward", name)
                out.append(tensor_diff(where, self.shapes[name], np.arange(self.done[name]), _all(stats)))
        return out

    def dtypes(self) -> dict[str, np.ndarray]:
        """The dtype of each tensor the run returned, as an empty array (what ``precision_note`` reads)."""
        self.flush()
        return {name: np.empty(0, dtype) for name, dtype in self.types.items()}


def _all(stats: list[dict[str, np.ndarray] | None]) -> list[dict[str, np.ndarray]]:
    """``stats`` without None (a batch measured with the probe's tolerance only when its gate was probed, which
    stays so: the other one is never picked)."""
    out = [s for s in stats if s is not None]
    assert len(out) == len(stats), "a gate measured only as probed came to be measured as not probed"
    return out


def probe_tolerance(tolerance: Tolerance) -> Tolerance:
    """The tolerance of a gate observed by saturation: ``PROBE_RTOL`` of slack."""
    return Tolerance(rtol=max(tolerance.rtol, PROBE_RTOL), atol=tolerance.atol)


def retolerated(e: Expectation, tolerance: Tolerance) -> Expectation:
    """``e`` with ``tolerance`` instead of its own, on the same scale and noise floor."""
    return replace(e, tolerance=tolerance.allowed(e.scale, e.noise_floor))


def forward_expectations(ref: ReferenceRun, problem: "Problem", truth_problem: "Problem", names: Sequence[str]
                          ) -> dict[str, Expectation]:
    """Per forward tensor in ``names``, over all steps: what this reference expects (tensors.FORWARD_ORDER), with
    its tolerance (a gate observed by saturation gets ``probe_tolerance`` when it is measured)."""
    def arrays(trace: "Trace", is_truth: bool) -> dict[str, np.ndarray]:
        inputs = truth_problem.inputs if is_truth else problem.inputs
        f = trace.forward
        cache = {"cache.xh": lambda: np.concatenate([inputs, f["h_prev"]], axis=-1),
                 "cache.c_prev": lambda: f["c_prev"], "cache.c": lambda: f["c"], "cache.h": lambda: f["h"]}
        return {name: cache[name]() if name in cache else f[name] for name in names}

    truth, same = paired(ref, arrays)
    return {name: expectation(truth[name], same[name], ref.tolerance) for name in truth}
