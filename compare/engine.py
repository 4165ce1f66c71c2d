"""Run every mode of the comparison against every reference and collect the measurements."""

from dataclasses import dataclass, field

import numpy as np

from compare import drive
from compare.errors import ImplementationRaised, UsageError
from compare.implementation import load_implementation
from compare.locate import Finding, failure_finding, first_divergence
from compare.measure import TensorDiff, measure, tensor_diff
from compare.problem import ProblemSpec, make_problem
from compare.tensors import BACKWARD_ORDER, PARAM_GRADS, gate_of
from compare.tolerance import Tolerance, tolerance_for
from references import REFERENCES, ReferenceUnavailable, load

MODES = ("isolated", "chained", "sequence")


@dataclass(frozen=True)
class Config:
    """What to compare: the problem's sizes and seed, which references, which modes."""

    spec: ProblemSpec = field(default_factory=ProblemSpec)
    references: tuple[str, ...] = REFERENCES
    modes: tuple[str, ...] = MODES


@dataclass(frozen=True)
class ReferenceRun:
    """One reference traced in the run's dtype (``expected``) and in float64 (``truth``)."""

    name: str
    expected: object  # references.Trace
    truth: object
    tolerance: object  # compare.tolerance.Tolerance for comparisons against this reference


@dataclass(frozen=True)
class Report:
    """Everything measured: one ``TensorDiff`` per reference x mode x phase x tensor, and the findings."""

    implementation: str
    config: Config
    diffs: tuple[TensorDiff, ...]
    findings: tuple[Finding, ...]  # the first divergence of each (reference, mode) that diverged
    skipped: tuple[str, ...]  # one sentence per mode that could not run, and why

    @property
    def diverged(self):
        return bool(self.findings)


def run(impl, config=Config()):
    """Compare ``impl`` (a path to a seed-convention file, or a module) with the references: a ``Report``."""
    implementation = load_implementation(impl)
    spec = config.spec
    truth_problem = make_problem(spec)
    problem = truth_problem.astype(np.dtype(spec.dtype))
    refs = [_trace_reference(name, problem, truth_problem) for name in config.references]
    collector = _Collector({ref.name: ref.tolerance for ref in refs})
    skipped = []

    chained = drive.forward(implementation, problem) if "chained" in config.modes else None
    isolated = {}
    if "isolated" in config.modes:
        for ref in refs:
            fed = (ref.expected.forward["h_prev"], ref.expected.forward["c_prev"])
            isolated[ref.name] = drive.forward(implementation, problem, fed_states=fed)
    for ref in refs:
        for mode, run_ in (("isolated", isolated.get(ref.name)), ("chained", chained)):
            if run_ is not None:
                collector.forward(ref, mode, run_)
    _backward(implementation, problem, truth_problem, refs, chained, isolated, collector)

    if "sequence" in config.modes:
        if implementation.has_sequence:
            _sequence(implementation, problem, refs, collector)
        else:
            skipped.append(f"sequence mode skipped: {implementation.name} defines no lstm_loss and dlstm_loss.")
    diffs = collector.finish()
    findings = first_divergence(diffs, tuple(collector.failures), spec.steps)
    findings = tuple(sorted(findings, key=lambda f: (config.references.index(f.reference), MODES.index(f.mode))))
    return Report(implementation.name, config, diffs, findings, tuple(skipped))


def _trace_reference(name, problem, truth_problem):
    try:
        module = load(name)
    except ReferenceUnavailable as error:
        raise UsageError(f"{error}.") from None
    expected = module.trace(problem)
    truth = expected if problem.dtype == np.float64 else module.trace(truth_problem)
    return ReferenceRun(name, expected, truth, reference_tolerance(module, problem.dtype))


def reference_tolerance(module, dtype):
    """The dtype's tolerance, widened to the reference's own accuracy where it declares a coarser one.

    A reference module may define ``TOLERANCE = Tolerance(rtol, atol)`` (finite differences do).
    """
    table = tolerance_for(dtype)
    own = getattr(module, "TOLERANCE", None)
    if own is None:
        return table
    return Tolerance(rtol=max(table.rtol, own.rtol), atol=max(table.atol, own.atol))


def _backward(impl, problem, truth_problem, refs, chained, isolated, collector):
    """Walk t = T-1 ... 0 once, computing each reference's per-step parameter gradients a single time."""
    alive = {(ref.name, "isolated"): isolated[ref.name] for ref in refs if ref.name in isolated}
    if chained is not None:
        alive.update({(ref.name, "chained"): chained for ref in refs})
    alive = {key: run_ for key, run_ in alive.items() if run_.failure is None}
    state = {}  # (reference or None for chained, mode) -> (dh_next, dc_next)
    for t in reversed(range(problem.steps)):
        if not alive:
            return
        results = {}
        if any(mode == "chained" for _, mode in alive):
            results["chained"] = _chained_step(impl, problem, t, chained, state)
        for ref in refs:
            expected = _step_grads(ref.expected, t, problem.inputs)
            truth = _step_grads(ref.truth, t, truth_problem.inputs)
            for mode in ("isolated", "chained"):
                if (ref.name, mode) not in alive:
                    continue
                if mode == "isolated":
                    result = _isolated_step(impl, problem, t, ref, isolated[ref.name])
                else:
                    result = results["chained"]
                if isinstance(result, ImplementationRaised):
                    collector.failures.append(failure_finding(ref.name, mode, result))
                    del alive[(ref.name, mode)]
                    continue
                collector.backward_step(ref.name, mode, t, result, expected, truth)


def _step_grads(trace, t, inputs):
    """A reference's backward tensors at step t, under the compared names (dWf ... dby, dh_prev, dc_prev)."""
    grads = {f"d{name}": value for name, value in trace.step_param_grads(t, inputs).items()}
    return {**grads, "dh_prev": trace.backward["dh_prev"][t], "dc_prev": trace.backward["dc_prev"][t]}


def _isolated_step(impl, problem, t, ref, run_):
    b = ref.expected.backward
    try:
        return drive.backward_step(impl, problem, t, b["dy"][t], b["dh_next"][t], b["dc_next"][t], run_.caches[t])
    except ImplementationRaised as raised:
        return raised


def _chained_step(impl, problem, t, run_, state):
    dh_next, dc_next = state.get("chained", (np.zeros_like(problem.h0), np.zeros_like(problem.c0)))
    dy = drive.output_gradient(run_.tensors["y"][t], problem.targets[t])
    try:
        result = drive.backward_step(impl, problem, t, dy, dh_next, dc_next, run_.caches[t])
    except ImplementationRaised as raised:
        return raised
    state["chained"] = (result["dh_prev"], result["dc_prev"])
    return result


def _sequence(impl, problem, refs, collector):
    result = drive.sequence(impl, problem)
    for ref in refs:
        if result.outputs is not None:
            collector.add(ref.name, "sequence", "forward", "y", np.arange(problem.steps),
                          result.outputs, ref.truth.forward["y"], ref.expected.forward["y"])
            collector.add(ref.name, "sequence", "forward", "loss", [-1], np.array([[result.loss]]),
                          np.array([[ref.truth.totals.loss]]), np.array([[ref.expected.totals.loss]]))
        if result.grads is not None:
            for name in PARAM_GRADS:
                collector.add(ref.name, "sequence", "backward", name, [-1], result.grads[name][None],
                              ref.truth.totals.grads[name[1:]][None], ref.expected.totals.grads[name[1:]][None])
        if result.failure is not None:
            collector.failures.append(failure_finding(ref.name, "sequence", result.failure))


class _Collector:
    """Accumulates per-step measurements into one ``TensorDiff`` per (reference, mode, phase, tensor)."""

    def __init__(self, tolerances):
        self.tolerances = tolerances  # reference name -> Tolerance
        self.diffs, self.failures = [], []
        self._steps = {}  # backward: (reference, mode, tensor) -> ([steps], [stats], shape)

    def add(self, reference, mode, phase, tensor, steps, actual, truth, same_dtype):
        stats = measure(actual, truth, same_dtype, self.tolerances[reference])
        labels = (reference, mode, phase, tensor, gate_of(tensor))
        self.diffs.append(tensor_diff(labels, np.shape(truth)[1:], steps, [stats]))

    def forward(self, ref, mode, run_):
        for name, actual in run_.tensors.items():  # (steps that ran, [B,] n)
            ran = len(actual)
            self.add(ref.name, mode, "forward", name, np.arange(ran), actual,
                     ref.truth.forward[name][:ran], ref.expected.forward[name][:ran])
        if run_.failure is not None:
            self.failures.append(failure_finding(ref.name, mode, run_.failure))

    def backward_step(self, reference, mode, t, actual, expected, truth):
        for name in BACKWARD_ORDER:
            stats = measure(actual[name][None], truth[name][None], expected[name][None],
                            self.tolerances[reference])
            steps, collected, _ = self._steps.setdefault((reference, mode, name), ([], [], truth[name].shape))
            steps.append(t)
            collected.append(stats)

    def finish(self):
        """All ``TensorDiff``s, the per-step backward measurements merged into one per tensor."""
        for (reference, mode, name), (steps, stats, shape) in self._steps.items():
            labels = (reference, mode, "backward", name, gate_of(name))
            self.diffs.append(tensor_diff(labels, shape, steps, stats))
        self._steps.clear()
        return tuple(self.diffs)
