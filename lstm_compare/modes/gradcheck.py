"""The numerical gradient check a hand-written LSTM needs: its analytic gradient against central differences of
its own loss, both from the same parameters, data and initial state.

The loss and the analytic gradient come from the file's ``lstm_loss``/``dlstm_loss`` when it has both;
otherwise the harness drives ``lstm``/``dlstm`` itself (loss = sum over steps of mean((y_t - target_t) ** 2),
so dL/dy_t = 2 (y_t - target_t) / O).  The problem is drawn by ``make_problem`` and always runs in float64:
in float32 a central difference with step 1e-5 has rounding errors near eps / step = 1e-2.

Step, relative error and threshold are the numeric reference's (``lstm_compare.references.numeric``): step 1e-5,
|a - n| / max(|a| + |n|, floor) with floor = 1e-4 max(|loss|, 1), and an entry disagrees above 1e-5.  Every
parameter entry is checked when there are at most ``MAX_ENTRIES`` in all; above that, a sample of that many
drawn from the problem's seed, every parameter keeping at least ``MIN_PER_PARAMETER`` entries (all of a smaller one).

This checks the backward pass against the file's own forward pass; ``lstm-compare report`` checks the forward
pass itself against PyTorch and JAX.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.lstm.cell import PARAM_GRADS
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.measuring.limits import check_fits, check_gradcheck_fits
from lstm_compare.references.numeric import RTOL, STEP, central_differences, floor_for, relative_error
from lstm_compare.usercode import drive
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.guard import as_float_array, call, unpack

if TYPE_CHECKING:
    import pandas as pd

    from lstm_compare.lstm.records import Problem
    from lstm_compare.usercode.conventions.base import Binding, Source

MAX_ENTRIES = 1000  # every entry up to this many in all (X=1: H up to 14; X=3: H up to 13)
MIN_PER_PARAMETER = 8
SHOWN = 3  # worst entries printed for a parameter that fails
PARAMS = tuple(name[1:] for name in PARAM_GRADS)  # Wf ... by


@dataclass(frozen=True)
class EntryCheck:
    """One parameter entry: the implementation's analytic gradient, the central difference, their error."""

    parameter: str
    index: tuple[int, ...]
    analytic: float
    numeric: float
    relative_error: float  # NaN when either value is NaN or Inf

    @property
    def passed(self) -> bool:
        return bool(self.relative_error <= RTOL)

    def where(self) -> str:
        return f"{self.parameter}[{', '.join(str(i) for i in self.index)}]"


@dataclass(frozen=True)
class ParameterCheck:
    """Every checked entry of one parameter, worst first."""

    name: str
    size: int
    entries: tuple[EntryCheck, ...]

    @property
    def failed(self) -> tuple[EntryCheck, ...]:
        return tuple(e for e in self.entries if not e.passed)

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def worst(self) -> EntryCheck:
        return self.entries[0]


@dataclass(frozen=True)
class GradCheck:
    """The whole check: one ``ParameterCheck`` per parameter, or the exception the implementation raised."""

    implementation: str
    spec: ProblemSpec
    driver: str  # which functions gave the loss and the analytic gradient
    loss: float
    floor: float
    parameters: tuple[ParameterCheck, ...]
    failure: str | None = None  # an exception in the user's code: nothing could be compared
    notes: tuple[str, ...] = ()  # how the file was loaded

    @property
    def checked(self) -> int:
        return sum(len(p.entries) for p in self.parameters)

    @property
    def total(self) -> int:
        return sum(p.size for p in self.parameters)

    @property
    def passed(self) -> bool:
        return self.failure is None and all(p.passed for p in self.parameters)

    def __bool__(self) -> bool:
        return self.passed

    def frame(self) -> "pd.DataFrame":
        """One row per checked entry (lstm_compare.output.notebook)."""
        from lstm_compare.output.notebook import gradcheck_frame

        return gradcheck_frame(self)

    def __repr__(self) -> str:
        from lstm_compare.output.notebook import gradcheck_repr

        return gradcheck_repr(self, summarize(self).splitlines()[-1])


def gradcheck(impl: "Source", spec: ProblemSpec = ProblemSpec(), max_entries: int = MAX_ENTRIES,
              convention: str = "auto") -> GradCheck:
    """Check ``impl`` (a path or a module, in any convention) on the problem ``spec`` draws: a ``GradCheck``.

    The question's convention is checked through its own ``lstm_loss``/``dlstm_loss`` when it has them; every
    other file through its step functions, driven by the harness with the harness's head and loss, and only on
    the parameters the file differentiates.
    """
    if spec.dtype != "float64":
        raise UsageError(f"gradcheck runs in float64 only (central differences in {spec.dtype} err by about "
                         f"eps / step = 1e-2); leave out --dtype.")
    if not spec.model.plain:
        raise UsageError(f"gradcheck checks one cell, not a model ({spec.model.describe()}); report compares a model "
                         f"layer by layer, so leave out --layers, --bidirectional, --proj and --peepholes here.")
    check_fits(spec, references=())
    check_gradcheck_fits(spec, _entry_count(spec, max_entries), minimum=_entry_count(spec, 0))
    implementation = bind(impl, convention)
    problem = make_problem(spec)
    names = tuple(name for name in PARAMS if f"d{name}" in implementation.backward_names)
    own_loss = implementation.convention == "question" and implementation.has_sequence
    driver = "lstm_loss/dlstm_loss" if own_loss else f"{implementation.step_functions} driven by the harness"
    loss_of = _sequence_loss if own_loss else _driven_loss
    try:
        loss = loss_of(implementation, problem)
        analytic = (_sequence_gradient if own_loss else _driven_gradient)(implementation, problem)
        entries = _entries(problem.params, max_entries, spec.seed, names)
        params = {name: np.array(value, dtype=np.float64) for name, value in problem.params.items()}
        # a fresh dict for every loss: bindings convert the parameters once per dict they are given
        numeric = central_differences(lambda p: loss_of(implementation, replace(problem, params=dict(p))), params,
                                      entries)
    except ImplementationRaised as raised:
        where = "" if raised.step is None else f"{raised.phase} step {raised.step}: "
        return GradCheck(implementation.name, spec, driver, np.nan, np.nan, (), where + raised.message.rstrip("."),
                         implementation.notes)
    floor = floor_for(loss) if np.isfinite(loss) else np.inf
    checks = [EntryCheck(name, tuple(int(i) for i in np.unravel_index(index, problem.params[name].shape)),
                         float(analytic[name].flat[index]), float(n), float(err))
              for (name, index), n, err in zip(entries, numeric, _errors(entries, analytic, numeric, floor))]
    parameters = tuple(ParameterCheck(name, int(problem.params[name].size),
                                      tuple(sorted((c for c in checks if c.parameter == name), key=_badness)))
                       for name in names)
    return GradCheck(implementation.name, spec, driver, float(loss), float(floor), parameters, None,
                     implementation.notes)


def _entry_count(spec: ProblemSpec, max_entries: int) -> int:
    """How many entries ``_entries`` will choose, from the sizes alone (before any array exists)."""
    H, X, O = spec.hidden, spec.inputs, spec.outputs
    sizes = [(X + H) * H] * 4 + [H] * 4 + [H * O, O]
    if sum(sizes) <= max_entries:
        return sum(sizes)
    return max(max_entries, sum(min(size, MIN_PER_PARAMETER) for size in sizes))


def _errors(entries: Sequence[tuple[str, int]], analytic: Mapping[str, np.ndarray], numeric: np.ndarray,
            floor: float) -> np.ndarray:
    a = np.array([analytic[name].flat[index] for name, index in entries])
    return relative_error(a, numeric, floor)


def _badness(check: EntryCheck) -> tuple[int, float]:
    """Sort key, worst first: NaN before everything, then larger errors."""
    return (0, 0.0) if np.isnan(check.relative_error) else (1, -check.relative_error)


def _entries(params: Mapping[str, np.ndarray], max_entries: int, seed: int,
             names: tuple[str, ...] = PARAMS) -> list[tuple[str, int]]:
    """(name, flat index) to check among the parameters ``names``: all of them, or a seeded sample of
    ``max_entries`` (more only when every parameter's minimum, min(size, MIN_PER_PARAMETER), already adds up to
    more), the rest shared by size."""
    sizes = {name: int(np.size(params[name])) for name in names}
    if sum(sizes.values()) <= max_entries:
        return [(name, i) for name in names for i in range(sizes[name])]
    counts = {name: min(size, MIN_PER_PARAMETER) for name, size in sizes.items()}
    spare = max(0, max_entries - sum(counts.values()))
    left = {name: sizes[name] - counts[name] for name in names}
    for name in names:
        counts[name] += spare * left[name] // max(1, sum(left.values()))
    rng = np.random.default_rng([seed, 2])
    return [(name, int(i)) for name in names
            for i in np.sort(rng.choice(sizes[name], size=counts[name], replace=False))]


def _sequence_loss(impl: "Binding", problem: "Problem") -> float:
    args = (dict(problem.params), problem.h0, problem.c0, problem.inputs, problem.targets)
    result = unpack(call(impl, "lstm_loss", args, "forward", None), 6, "lstm_loss")
    return float(as_float_array(result[2], np.shape(result[2]), "the loss returned by lstm_loss").sum())


def _sequence_gradient(impl: "Binding", problem: "Problem") -> dict[str, np.ndarray]:
    run = drive.sequence(impl, problem)
    if run.failure is not None:
        raise run.failure
    return {name[1:]: value for name, value in run.backward.items()}


def _driven_loss(impl: "Binding", problem: "Problem") -> float:
    run = drive.forward(impl, problem)
    if run.failure is not None:
        raise run.failure
    return float(np.sum(np.mean((run.outputs - problem.targets) ** 2, axis=-1)))


def _driven_gradient(impl: "Binding", problem: "Problem") -> dict[str, np.ndarray]:
    """dlstm chained from the last step to the first, dy_t = 2 (y_t - target_t) / O, dparams summed."""
    run = drive.forward(impl, problem)
    if run.failure is not None:
        raise run.failure
    total = {name: np.zeros_like(value) for name, value in problem.params.items()}
    for _, step in drive.backward_chain(impl, problem, run):
        for name in PARAMS:
            if f"d{name}" in step:
                total[name] = total[name] + step[f"d{name}"]
    return total


def summarize(result: GradCheck) -> str:
    """Lines for the terminal: what ran, the worst entry of each parameter (more for a failing one), the verdict."""
    lines = [f"gradcheck: {result.implementation} ({result.spec.label()}), loss and gradient from {result.driver}"]
    lines += [f"  note: {note}" for note in result.notes]
    if result.failure is not None:
        lines.append(f"The gradients could not be checked: {result.failure}.")
        return "\n".join(lines)
    sample = "every entry" if result.checked == result.total else f"a seeded sample of {result.checked} entries"
    lines.append(f"  {sample} of {result.total}, against central differences of the loss (step {STEP:g}) from the "
                 f"same initial state;")
    lines.append(f"  an entry agrees when its relative error |a - n| / max(|a| + |n|, {result.floor:.1e}) <= {RTOL:g}")
    for p in result.parameters:
        status = "ok" if p.passed else f"FAILED {len(p.failed)}/{len(p.entries)}"
        for k, e in enumerate(p.entries[:1] if p.passed else p.entries[:SHOWN]):
            label = f"{p.name:<3} {status:<13}" if k == 0 else ""
            lines.append(f"  {label:<17} rel err {e.relative_error:7.1e} at {e.where() + ':':<11} analytic "
                         f"{e.analytic:<12.6g} numeric {e.numeric:.6g}")
    failed = [e for p in result.parameters for e in p.failed]
    if not failed:
        worst = max((p.worst for p in result.parameters), key=lambda e: e.relative_error)
        lines.append(f"Gradients agree: the worst relative error is {worst.relative_error:.1e} ({worst.where()}), "
                     f"within {RTOL:g}.")
    else:
        by_parameter = ", ".join(f"{p.name} {len(p.failed)}" for p in result.parameters if p.failed)
        worst = min(failed, key=_badness)
        lines.append(f"Gradients disagree on {len(failed)} of {result.checked} entries ({by_parameter}); worst "
                     f"{worst.where()}: analytic {worst.analytic:.6g}, numeric {worst.numeric:.6g} "
                     f"(relative error {worst.relative_error:.1e}).")
    return "\n".join(lines)


__all__ = ["MAX_ENTRIES", "EntryCheck", "GradCheck", "ParameterCheck", "gradcheck", "summarize"]
