"""Run every mode of the comparison against every reference and collect the measurements."""

from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from lstm_compare.choices import DEFAULT_REFERENCES, MODES, Convention, Mode, Reference, check_config
from lstm_compare.measuring import kernels
from lstm_compare.usercode import drive
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.conventions.base import PROBE_RTOL
from lstm_compare.usercode.conventions.naming import Naming
from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.usercode.guard import calls, read_only, time_limit
from lstm_compare.measuring.limits import check_fits
from lstm_compare.locating.locate import Finding, failure_finding, first_divergence
from lstm_compare.measuring.measure import (AnyExpectation, Expectation, TensorDiff, expectation, measure, outer_expectation,
                             tensor_diff)
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.lstm.cell import BACKWARD_ORDER, FORWARD_ORDER, PARAM_GRADS, VARIANT_PARAM_GRADS, gate_of
from lstm_compare.measuring.tolerance import Tolerance, tolerance_for, widened
from lstm_compare.references import REFERENCES, ReferenceRefused, ReferenceUnavailable, load
from lstm_compare.lstm.cell import GATES, stepwise_outer
from lstm_compare.references.memory import release_free_memory

if TYPE_CHECKING:
    import pandas as pd

    from lstm_compare.usercode.conventions.base import Binding, SequenceRun, Source
    from lstm_compare.usercode.drive import ForwardRun
    from lstm_compare.lstm.records import Problem, Trace



@dataclass(frozen=True)
class Config:
    """What to compare: the problem's sizes and seed, which references, which modes (validated on construction:
    a ``UsageError`` in the command line's words)."""

    spec: ProblemSpec = field(default_factory=ProblemSpec)
    references: tuple[Reference, ...] = DEFAULT_REFERENCES
    modes: tuple[Mode, ...] = MODES
    convention: Convention = "auto"  # lstm_compare.usercode.conventions.CHOICES: how the user's file is written
    timeout: float | None = None  # seconds per call of your code; None: the CLI's --timeout or 60
    tolerance_factor: float = 1.0  # every allowance times this (1 or more): docs/tolerance.md

    def __post_init__(self) -> None:
        check_config(self)


@dataclass(frozen=True)
class ReferenceRun:
    """One reference traced in the run's dtype (``same_dtype``) and in float64 (``truth``)."""

    name: str
    same_dtype: "Trace"  # run in the implementation's dtype
    truth: "Trace"  # run in float64 (the same object in a float64 run)
    tolerance: Tolerance  # for comparisons against this reference
    # what this reference expects of each forward tensor, with ``tolerance``, made as soon as it was traced so
    # that the same-dtype run's forward tensors can go (``prepared``); None until then
    forward_expected: Mapping[str, Expectation] | None = None


@dataclass(frozen=True)
class Report:
    """Everything measured: one ``TensorDiff`` per reference x mode x phase x tensor, and the findings."""

    implementation: str
    config: Config
    diffs: tuple[TensorDiff, ...]
    findings: tuple[Finding, ...]  # the first divergence of each (reference, mode) that diverged
    failures: tuple[Finding, ...]  # every exception raised in the implementation, located
    skipped: tuple[str, ...]  # one sentence per mode that could not run, and why
    naming: Naming | None = None  # the user's own names for the tensors (its convention's)

    @property
    def diverged(self) -> bool:
        return bool(self.findings)

    def frame(self) -> "pd.DataFrame":
        """The rows of divergence.csv as a pandas DataFrame, with the same columns."""
        from lstm_compare.output.report import divergence_frame  # report.py imports this module

        return divergence_frame(self)

    def first_divergence_frame(self) -> "pd.DataFrame":
        """The rows of first_divergence.csv as a pandas DataFrame, with the same columns."""
        from lstm_compare.output.report import first_divergence_frame

        return first_divergence_frame(self)

    def __repr__(self) -> str:  # a few lines whatever T (lstm_compare.output.notebook)
        from lstm_compare.output.notebook import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        from lstm_compare.output.notebook import report_html

        return report_html(self)


def run(impl: "Source", config: Config = Config()) -> Report:
    """Compare ``impl`` (a path to an LSTM file, a module, or a ``Binding``) with the references: a ``Report``."""
    with time_limit(config.timeout), calls(), widened(config.tolerance_factor):  # calls(): the time limit's
        # handler stays in place between calls
        return _run(impl, config)


def _run(impl: "Source", config: Config) -> Report:
    check_fits(config.spec, config.references)
    implementation = bind(impl, config.convention)
    implementation.begin_run()
    unknown = [mode for mode in config.modes if mode not in MODES]
    if unknown:
        raise UsageError(f"unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}.")
    if not config.spec.model.plain:
        from lstm_compare.modes.models import run_model  # models.py builds on this module

        return run_model(implementation, config)
    problem, truth_problem = _problems(implementation, config.spec)
    kernels.prepare(problem)  # the measurement kernels compile in the background while the references run
    traced = {name: _trace_reference(name, problem, truth_problem, implementation.forward_names)
              for name in trace_order(config.references, problem)}
    refs = [traced.pop(name) for name in config.references]
    collector = Collector()
    returned = compare_steps(implementation, problem, truth_problem, refs, config.modes, collector)
    skipped = [*implementation.notes, *implementation.run_notes]
    if implementation.has_sequence and implementation.sequence_zero_c0:
        skipped.append(f"c0 = 0 in every mode: the whole-sequence forward of {implementation.name} takes no "
                       f"initial cell state.")
    if "sequence" in config.modes:
        if implementation.has_sequence:
            sequence_run = _sequence(implementation, problem, refs, collector)
            returned += [sequence_run.forward, sequence_run.backward]
        else:
            skipped.append(f"sequence mode skipped: {implementation.name} does not define both "
                           f"{implementation.sequence_functions}.")
    skipped += precision_note(implementation.name, problem.dtype, returned)
    diffs = collector.finish()
    order = lambda f: (config.references.index(f.reference), MODES.index(f.mode))  # noqa: E731
    failures = tuple(sorted(collector.failures, key=order))
    naming = implementation.naming(config.spec)
    findings = first_divergence(diffs, failures, config.spec.steps, not implementation.has_head, naming)
    findings = tuple(sorted(findings, key=order))
    return Report(implementation.name, config, diffs, findings, failures, tuple(skipped), naming)


def compare_steps(implementation: "Binding", problem: "Problem", truth_problem: "Problem", refs: list["ReferenceRun"],
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
    chained, isolated, dtypes = _forward(implementation, problem, truth_problem, refs, tuple(modes), collector,
                                         forward_names)
    _backward(implementation, problem, truth_problem, refs, chained, isolated, collector, backward_names)
    return dtypes


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
    expected = _forward_expectations(ref, problem, truth_problem, names)
    same = ref.same_dtype if ref.same_dtype is ref.truth else _slim(ref.same_dtype)
    return replace(ref, same_dtype=same, forward_expected=expected)


def precision_note(name: str, dtype: np.dtype[Any], returned: Sequence[Mapping[str, Any]]) -> list[str]:
    """A sentence when the code returns another float precision than the run's: float64 in a float32 run (its
    float32 rounding is not tested), float32 in a float64 run (its errors are float32 rounding, not a bug)."""
    other = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.float32}.get(np.dtype(dtype))
    if other is None:
        return []
    found = sorted({tensor for values in returned for tensor, value in values.items()
                    if isinstance(value, np.ndarray) and value.dtype == other})
    if not found:
        return []
    names = f"{', '.join(found[:4])}{', ...' if len(found) > 4 else ''}"
    if other == np.float64:
        return [f"{name} computes in float64 on float32 inputs ({names} come back float64), so its float32 rounding "
                f"is not what this run measures."]
    return [f"{name} computes in float32 on float64 inputs ({names} come back float32), so differences of float32 "
            f"rounding (about 1e-7) are its precision, not a wrong formula: --dtype float32 compares it as such."]


def _problems(implementation: "Binding", spec: ProblemSpec) -> tuple["Problem", "Problem"]:
    """The run's problem (its dtype, parameters read-only) and its float64 truth; refuses --batch it cannot take."""
    truth_problem = make_problem(spec)
    if implementation.has_sequence and implementation.sequence_zero_c0:  # its whole-sequence code takes no c0
        truth_problem = replace(truth_problem, c0=np.zeros_like(truth_problem.c0))
    problem = truth_problem.astype(np.dtype(spec.dtype))
    problem = replace(problem, params={k: read_only(v) for k, v in problem.params.items()})
    if spec.batch is not None:
        refusal = drive.batch_support(implementation, problem)
        if refusal:
            raise UsageError(refusal.sentence(implementation.name))
    return problem, truth_problem


def _forward(implementation: "Binding", problem: "Problem", truth_problem: "Problem", refs: list[ReferenceRun],
             modes: tuple[str, ...], collector: "Collector", names: Sequence[str]
             ) -> tuple["ForwardRun | None", dict[str, "ForwardRun"], list[dict[str, np.ndarray]]]:
    """Run and measure the forward of the chained mode (once) and of the isolated mode (once per reference), each
    run measured as it goes; also the dtype of every tensor each run returned (empty arrays).  ``refs`` are
    ``prepared`` first and ``slimmed`` after."""
    refs[:] = [prepared(ref, problem, truth_problem, names) if ref.forward_expected is None else ref for ref in refs]
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
        chained, stream = measured(refs)
        streams.update({(ref.name, "chained"): stream for ref in refs})
    isolated = {}
    for i, ref in enumerate(refs):  # each reference let go of its forward once its last run is measured
        if "isolated" in modes:
            fed = (ref.same_dtype.forward["h_prev"], ref.same_dtype.forward["c_prev"])
            isolated[ref.name], streams[(ref.name, "isolated")] = measured([ref], fed)
        del expected[ref.name]
        refs[i] = slimmed(ref)
    for ref in refs:
        for mode, run_ in (("isolated", isolated.get(ref.name)), ("chained", chained)):
            if run_ is not None:
                collector.diffs += streams[(ref.name, mode)].diffs(ref.name, mode, collector.slot)
                if run_.failure is not None:
                    collector.failures.append(failure_finding(ref.name, mode, run_.failure))
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
                probe = _probe_tolerance(ref.tolerance)
                pair: tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray] | None]
                if probe == ref.tolerance:
                    plain = measure(actual, e)
                    pair = (plain, plain)
                elif name in probed:
                    pair = (None, measure(actual, _retolerated(e, probe)))
                else:  # a gate may yet be observed by saturation (probed only grows); other tensors never are
                    pair = (measure(actual, e), measure(actual, _retolerated(e, probe)) if name in GATES else None)
                self.stats.setdefault((ref.name, name), []).append(pair)
        self.pending.clear()

    def finish(self) -> None:
        """The run is over: measure what is pending, and let go of the expectations."""
        self.flush()
        self.targets = []

    def diffs(self, reference: str, mode: str, slot: tuple[int, str]) -> list[TensorDiff]:
        """This run's ``TensorDiff`` against ``reference``, one per tensor in FORWARD_ORDER (all runs done)."""
        self.flush()
        probed = self.implementation.probed
        out = []
        for name in FORWARD_ORDER:
            if (reference, name) in self.stats:
                stats = [pair[1 if name in probed else 0] for pair in self.stats[(reference, name)]]
                labels = (reference, mode, "forward", name, gate_of(name))
                out.append(tensor_diff(labels, self.shapes[name], np.arange(self.done[name]), _all(stats), slot))
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


def _probe_tolerance(tolerance: Tolerance) -> Tolerance:
    """The tolerance of a gate observed by saturation: ``PROBE_RTOL`` of slack."""
    return Tolerance(rtol=max(tolerance.rtol, PROBE_RTOL), atol=tolerance.atol)


def _retolerated(e: Expectation, tolerance: Tolerance) -> Expectation:
    """``e`` with ``tolerance`` instead of its own, on the same scale and noise floor."""
    return replace(e, tolerance=tolerance.allowed(e.scale, e.noise_floor))


# Where a float64 trace holds at least LARGE_TRACE bytes, the references are traced in TRACE_ORDER, whatever order
# they are reported in: the one whose own computation holds the most while it runs (JAX: its compile and the
# whole scan's buffers) first, when least else is held (at T=3000 H=512 float32, 200 MiB less at the peak).
# Smaller ones keep the order given: torch traced before JAX is 0.1 s quicker (measured at T=100 H=64).
TRACE_ORDER = ("jax", "torch")
LARGE_TRACE = 64 << 20


def trace_order(names: Sequence[str], problem: "Problem") -> list[str]:
    """The order in which to trace the references ``names`` for ``problem``."""
    floats_per_step = problem.inputs[0].size + 16 * problem.h0.size  # what a trace holds per step, about
    if problem.steps * floats_per_step * 8 < LARGE_TRACE:
        return list(names)
    return sorted(names, key=lambda name: TRACE_ORDER.index(name) if name in TRACE_ORDER else len(TRACE_ORDER))


def _trace_reference(name: str, problem: "Problem", truth_problem: "Problem", forward_names: Sequence[str] = ()
                     ) -> ReferenceRun:
    """Both runs of a reference, ``prepared`` for ``forward_names`` at once (before the next one is traced); the
    traces keep no d*_next (the isolated mode takes step t+1's d*_prev).  The memory each run's computation
    freed is given back before the next one starts."""
    try:
        module = load(name)
        if problem.dtype == np.float64 or getattr(module, "COMPUTES_IN_FLOAT64", False):
            same_dtype = truth = _traced(module, truth_problem)  # one run serves as both
        else:
            same_dtype, truth = _traced(module, problem), _traced(module, truth_problem)
    except (ReferenceUnavailable, ReferenceRefused) as error:  # not installed, or a size it refuses
        raise UsageError(f"{error}".rstrip(".") + ".") from None
    ref = ReferenceRun(name, same_dtype, truth, reference_tolerance(module, problem.dtype))
    return prepared(ref, problem, truth_problem, forward_names)


def _traced(module: ModuleType, problem: "Problem") -> "Trace":
    """``module.trace(problem)`` without dh_next and dc_next (copies of dh_prev and dc_prev one step on, which
    ``_fed_next`` reads off those), the memory its computation freed given back."""
    trace = module.trace(problem)
    trace = replace(trace, backward={k: v for k, v in trace.backward.items() if k not in ("dh_next", "dc_next")})
    release_free_memory(sum(a.nbytes for a in (*trace.forward.values(), *trace.backward.values())))
    return trace


def _fed_next(backward: Mapping[str, np.ndarray], state: str, t: int) -> np.ndarray:
    """d{state}_next at step t: the trace's own, or step t+1's d{state}_prev (zero after the last step)."""
    if f"d{state}_next" in backward:
        return backward[f"d{state}_next"][t]
    prev = backward[f"d{state}_prev"]
    return prev[t + 1] if t + 1 < len(prev) else np.zeros_like(prev[t])


def reference_tolerance(module: ModuleType, dtype: np.typing.DTypeLike) -> Tolerance:
    """The dtype's tolerance, widened to the reference's own accuracy where it declares a coarser one.

    A reference module may define ``TOLERANCE`` with ``rtol`` and ``atol`` (finite differences do).
    """
    table = tolerance_for(dtype)
    own = getattr(module, "TOLERANCE", None)
    if own is None:
        return table
    return Tolerance(rtol=max(table.rtol, own.rtol), atol=max(table.atol, own.atol))


def _paired(ref: ReferenceRun, build: Callable[["Trace", bool], dict[str, np.ndarray]]
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``build(trace, ...)`` for the float64 truth and the same-dtype run, computed once when they coincide."""
    truth = build(ref.truth, True)
    return truth, (truth if ref.same_dtype is ref.truth else build(ref.same_dtype, False))


def _forward_expectations(ref: ReferenceRun, problem: "Problem", truth_problem: "Problem", names: Sequence[str]
                          ) -> dict[str, Expectation]:
    """Per forward tensor in ``names``, over all steps: what this reference expects (tensors.FORWARD_ORDER), with
    its tolerance (a gate observed by saturation gets ``_probe_tolerance`` when it is measured)."""
    def arrays(trace: "Trace", is_truth: bool) -> dict[str, np.ndarray]:
        inputs = truth_problem.inputs if is_truth else problem.inputs
        f = trace.forward
        cache = {"cache.xh": lambda: np.concatenate([inputs, f["h_prev"]], axis=-1),
                 "cache.c_prev": lambda: f["c_prev"], "cache.c": lambda: f["c"], "cache.h": lambda: f["h"]}
        return {name: cache[name]() if name in cache else f[name] for name in names}

    truth, same = _paired(ref, arrays)
    return {name: expectation(truth[name], same[name], ref.tolerance) for name in truth}


def _backward_expectations(ref: ReferenceRun, steps: list[int], problem: "Problem", truth_problem: "Problem",
                           names: Sequence[str]) -> dict[str, AnyExpectation]:
    """Per backward tensor in ``names`` at ``steps``: what this reference expects (each step's dWf ... dby
    contribution, dx, dh_prev, dc_prev).  An unbatched weight's contribution stays as its outer product's factors
    (``OuterExpectation``): the same figures, without forming a parameter-sized array per step."""
    params = [name[1:] for name in names if name in PARAM_GRADS or name in VARIANT_PARAM_GRADS]

    def arrays(trace: "Trace", is_truth: bool) -> dict[str, Any]:
        inputs = truth_problem.inputs if is_truth else problem.inputs
        parts = trace.param_grad_parts(steps, inputs, params) if params else {}
        other = {"dx": lambda: trace.totals.dinputs[steps], "dh_prev": lambda: trace.backward["dh_prev"][steps],
                 "dc_prev": lambda: trace.backward["dc_prev"][steps]}
        return {name: parts[name[1:]] if name[1:] in parts else other[name]() for name in names}

    truth, same = _paired(ref, arrays)
    expected: dict[str, AnyExpectation] = {}
    for name in names:
        t, r = truth[name], same[name]
        if not isinstance(t, tuple):
            expected[name] = expectation(t, r, ref.tolerance)
        elif t[0].ndim == 2:  # unbatched: an outer product, kept as its factors
            expected[name] = outer_expectation(t, t if r is t else r, ref.tolerance)
        else:  # batched: a sum over the batch, formed as the references' own products
            formed = stepwise_outer(*t)
            expected[name] = expectation(formed, formed if r is t else stepwise_outer(*r), ref.tolerance)
    return expected


# Backward steps are measured in batches of about this many elements per tensor: small tensors gain from
# fewer NumPy calls, while large ones are best measured step by step, while their data is still in cache.  Each
# tensor's batch follows its own size, so biases and state gradients are not measured one step at a time
# beside large weights.
ELEMENTS_PER_BATCH = 1 << 15
MAX_STEPS_PER_BATCH = 256


def steps_per_batch(params: Mapping[str, np.ndarray]) -> int:
    """Steps per batch for the largest parameter (the batch of every tensor before tensors were grouped)."""
    return _steps_for(max(v.size for v in params.values()))


def _steps_for(size: int) -> int:
    return int(np.clip(ELEMENTS_PER_BATCH // max(size, 1), 1, MAX_STEPS_PER_BATCH))


def _batch_groups(problem: "Problem", names: Sequence[str]) -> dict[int, list[str]]:
    """Backward tensor names grouped by how many steps are measured together (by their size per step)."""
    sizes = {"dx": problem.inputs[0].size, "dh_prev": problem.h0.size, "dc_prev": problem.c0.size,
             **{f"d{k}": v.size for k, v in problem.params.items()}}
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(_steps_for(sizes.get(name, max(sizes.values()))), []).append(name)
    return groups


Pending = dict[tuple[str, str], list[tuple[int, dict[str, np.ndarray]]]]  # (reference, mode) -> [(t, result)]


def _backward(impl: "Binding", problem: "Problem", truth_problem: "Problem", refs: list[ReferenceRun],
              chained: "ForwardRun | None", isolated: dict[str, "ForwardRun"], collector: "Collector",
              names: Sequence[str]) -> None:
    """Walk t = T-1 ... 0 once; measure ``names`` in batches of steps, preparing each reference's expectations once
    (with the fused kernels where the weight contributions are large enough to repay compiling them)."""
    with kernels.use(kernels.worth_it(problem)):
        _backward_steps(impl, problem, truth_problem, refs, chained, isolated, collector, names)


def _backward_steps(impl: "Binding", problem: "Problem", truth_problem: "Problem", refs: list[ReferenceRun],
                    chained: "ForwardRun | None", isolated: dict[str, "ForwardRun"], collector: "Collector",
                    backward_names: Sequence[str]) -> None:
    alive = {(ref.name, "isolated"): isolated[ref.name] for ref in refs if ref.name in isolated}
    if chained is not None:
        alive.update({(ref.name, "chained"): chained for ref in refs})
    alive = {key: run_ for key, run_ in alive.items() if run_.failure is None}
    groups = _batch_groups(problem, backward_names)
    collector.backward_order = ([ref.name for ref in refs], list(backward_names))
    pending: dict[int, Pending] = {batch: {key: [] for key in alive} for batch in groups}  # not yet measured
    chain = drive.backward_chain(impl, problem, chained) if chained is not None else None
    for t in reversed(range(problem.steps)):
        chained_result: Any = None  # this step's backward on the own chain, or the exception that ended it
        if any(mode == "chained" for _, mode in alive):
            try:
                _, chained_result = next(chain)  # type: ignore[arg-type]  # made whenever a chained mode runs
            except ImplementationRaised as raised:
                chained_result = raised
        for ref in refs:
            for mode in ("isolated", "chained"):
                if (ref.name, mode) not in alive:
                    continue
                result = chained_result if mode == "chained" else _isolated_step(impl, problem, t, ref, isolated)
                if isinstance(result, ImplementationRaised):
                    collector.failures.append(failure_finding(ref.name, mode, result))
                    del alive[(ref.name, mode)]
                else:
                    for batch, names in groups.items():
                        pending[batch][(ref.name, mode)].append((t, {name: result[name] for name in names}))
        for batch, names in groups.items():
            if t == 0 or not alive or max(len(p) for p in pending[batch].values()) >= batch:
                _measure_pending(refs, pending[batch], problem, truth_problem, collector, names)
        if not alive:
            return


def _measure_pending(refs: list[ReferenceRun], pending: Pending, problem: "Problem", truth_problem: "Problem",
                     collector: "Collector", names: Sequence[str]) -> None:
    for ref in refs:
        keys = [key for key in pending if key[0] == ref.name and pending[key]]
        if not keys:
            continue
        steps = sorted({t for key in keys for t, _ in pending[key]}, reverse=True)
        expected = _backward_expectations(ref, steps, problem, truth_problem, names)
        for key in keys:
            key_steps = [t for t, _ in pending[key]]
            results = [result for _, result in pending[key]]
            mine = expected
            if key_steps != steps:  # a mode that stopped early: only its steps (indexing copies, so only then)
                rows = [steps.index(t) for t in key_steps]
                mine = {name: e.rows(rows) for name, e in expected.items()}
            collector.backward_steps(*key, key_steps, results, mine)
            pending[key] = []


def _isolated_step(impl: "Binding", problem: "Problem", t: int, ref: ReferenceRun, isolated: dict[str, "ForwardRun"]
                   ) -> dict[str, np.ndarray] | ImplementationRaised:
    """Step t's backward fed the reference's dy, dh_next and dc_next, with the cache its own forward made (let go
    of here: each step's backward runs once)."""
    b = ref.same_dtype.backward
    caches = isolated[ref.name].caches
    cache, caches[t] = caches[t], None
    try:
        return drive.backward_step(impl, problem, t, b["dy"][t], _fed_next(b, "h", t), _fed_next(b, "c", t), cache)
    except ImplementationRaised as raised:
        return raised


def _sequence_expected(trace: "Trace", name: str) -> tuple[np.ndarray | list[int], np.ndarray]:
    """What a reference expects of one whole-sequence result: (steps, array stacked over them)."""
    t = trace.totals
    if name in trace.forward:
        return np.arange(trace.forward[name].shape[0]), trace.forward[name]
    if name == "dx":
        return np.arange(t.dinputs.shape[0]), t.dinputs
    whole = {"loss": np.array(t.loss), "dh0": t.dh0, "dc0": t.dc0}
    return [-1], (whole[name] if name in whole else t.grads[name[1:]])[None]


def _sequence(impl: "Binding", problem: "Problem", refs: list[ReferenceRun], collector: "Collector"
              ) -> "SequenceRun":
    result = drive.sequence(impl, problem)
    for ref in refs:
        for phase, values, order in (("forward", result.forward, FORWARD_ORDER + ("loss",)),
                                     ("backward", result.backward, PARAM_GRADS + BACKWARD_ORDER)):
            for name in dict.fromkeys(n for n in order if n in values):
                steps, truth = _sequence_expected(ref.truth, name)
                same = _sequence_expected(ref.same_dtype, name)[1]
                actual = np.asarray(values[name])
                actual = actual if len(steps) > 1 or steps[0] >= 0 else actual[None]
                collector.add(ref.name, "sequence", phase, name, steps, actual,
                              expectation(truth, same, ref.tolerance))
        if result.failure is not None:
            collector.failures.append(failure_finding(ref.name, "sequence", result.failure))
    return result


class Collector:
    """Accumulates measurements into one ``TensorDiff`` per (reference, mode, phase, tensor)."""

    def __init__(self, slot: tuple[int, str] = (1, "forward")) -> None:
        self.slot = slot  # the model's (layer, direction) every measurement here belongs to
        self.diffs: list[TensorDiff] = []
        self.failures: list[Finding] = []
        # (reference, mode, tensor) -> ([steps], [stats], shape)
        self._backward: dict[tuple[str, str, str], tuple[list[int], list[dict[str, np.ndarray]], tuple[int, ...]]] = {}
        # the order of references and of tensor names in which ``finish`` lists the backward diffs (reference,
        # mode, tensor), whatever order the batches of different sizes were measured in
        self.backward_order: tuple[list[str], list[str]] = ([], [])

    def add(self, reference: str, mode: str, phase: str, tensor: str, steps: Sequence[int] | np.ndarray,
            actual: np.ndarray, expected: Expectation) -> None:
        labels = (reference, mode, phase, tensor, gate_of(tensor))
        self.diffs.append(tensor_diff(labels, np.shape(actual)[1:], steps, [measure(actual, expected)], self.slot))

    def backward_steps(self, reference: str, mode: str, steps: list[int], results: list[dict[str, np.ndarray]],
                       expected: dict[str, AnyExpectation]) -> None:
        for name in expected:
            actual = results[0][name][None] if len(results) == 1 else np.stack([r[name] for r in results])  # (S, ...)
            done_steps, stats, _ = self._backward.setdefault((reference, mode, name), ([], [], actual.shape[1:]))
            done_steps.extend(steps)
            stats.append(measure(actual, expected[name]))

    def finish(self) -> tuple[TensorDiff, ...]:
        """All ``TensorDiff``s, the per-step backward measurements merged into one per tensor."""
        references, names = self.backward_order

        def order(key: tuple[str, str, str]) -> tuple[int, int, int]:
            return (references.index(key[0]) if key[0] in references else len(references), MODES.index(key[1]),
                    names.index(key[2]) if key[2] in names else len(names))

        for (reference, mode, name), (steps, stats, shape) in sorted(self._backward.items(),
                                                                     key=lambda item: order(item[0])):
            self.diffs.append(tensor_diff((reference, mode, "backward", name, gate_of(name)), shape, steps, stats,
                                          self.slot))
        self._backward.clear()
        layer, direction = self.slot
        self.failures = [replace(f, layer=layer, direction=direction) for f in self.failures]
        return tuple(self.diffs)
