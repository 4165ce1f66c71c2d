"""The comparison of a single cell, from the user's file to a ``Report``: draw the problem, trace the references,
run the step modes and the sequence mode, locate the first divergences."""

from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lstm_compare.errors import UsageError
from lstm_compare.locating.locate import first_divergence
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.lstm.where import MODES, by_reference_and_mode
from lstm_compare.measuring import kernels
from lstm_compare.measuring.limits import check_fits
from lstm_compare.measuring.tolerance import reference_tolerance, widened
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.forward import prepared
from lstm_compare.modes.notes import precision_note
from lstm_compare.modes.records import Config, ReferenceRun, Report, TracedReferences, reference_errors_as_usage
from lstm_compare.modes.sequence import sequence_pass
from lstm_compare.modes.steps import compare_steps
from lstm_compare.references import load
from lstm_compare.references.memory import release_free_memory
from lstm_compare.usercode import drive
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.guard import read_only
from lstm_compare.usercode.isolation import isolated
from lstm_compare.usercode.timelimit import calls, time_limit

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem, Trace
    from lstm_compare.usercode.conventions.base import Binding, Source


def run(impl: "Source", config: Config = Config()) -> Report:
    """Compare ``impl`` (a path to an LSTM file, a module, or a ``Binding``) with the references: a ``Report``."""
    # calls(): the time limit's handler stays in place between calls; isolated(): the process kept apart from
    # what the user's code changes in it
    with time_limit(config.timeout), calls(), isolated(), widened(config.tolerance_factor):
        return _run(impl, config)


def _run(impl: "Source", config: Config) -> Report:
    check_fits(config.spec, config.references)
    implementation = bind(impl, config.convention)
    implementation.begin_run()
    unknown = [mode for mode in config.modes if mode not in MODES]
    if unknown:
        raise UsageError(f"unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}.")
    config = replace(config, spec=batch_resolved(implementation, config.spec))
    check_fits(config.spec, config.references, step_cache_bytes(implementation, config.spec))
    if not config.spec.model.plain:
        from lstm_compare.modes.models import run_model  # the model variants, slot by slot

        return run_model(implementation, config)
    problem, truth_problem = _problems(implementation, config.spec)
    kernels.prepare(problem)  # the measurement kernels compile in the background while the references run
    traced = {name: trace_reference(name, problem, truth_problem, implementation.forward_names)
              for name in trace_order(config.references, problem)}
    refs = TracedReferences(traced.pop(name) for name in config.references)
    collector = Collector()
    returned = compare_steps(implementation, problem, truth_problem, refs, config.modes, collector)
    notes, skipped = [*implementation.notes, *implementation.run_notes], []
    if implementation.has_sequence and implementation.sequence_zero_c0:
        notes.append(f"c0 = 0 in every mode: the whole-sequence forward of {implementation.name} takes no "
                     f"initial cell state.")
    if "sequence" in config.modes:
        if implementation.has_sequence:
            sequence_run = sequence_pass(implementation, problem, refs, collector)
            returned += [sequence_run.forward, sequence_run.backward]
        else:
            skipped.append(f"sequence mode skipped: {implementation.name} does not define both "
                           f"{implementation.sequence_functions}.")
    notes += precision_note(implementation.name, problem.dtype, returned)
    diffs = collector.finish()
    order = by_reference_and_mode(config.references)
    failures = tuple(sorted(collector.failures, key=order))
    naming = implementation.naming(config.spec)
    findings = first_divergence(diffs, failures, config.spec.steps, not implementation.has_head, naming)
    findings = tuple(sorted(findings, key=order))
    return Report(implementation.name, config, diffs, findings, failures, tuple(skipped), naming, tuple(notes))


# The rows a batched convention (cs231n's, Karpathy's, declared rows or columns) runs with when no --batch is
# asked for: bugs that show only with a batch (a bias gradient averaged over it, a sum that keeps one row) show.
DEFAULT_BATCH = 2
NOT_EXERCISED = "batches were not exercised"  # the start of the note a run of single vectors carries


def batch_resolved(implementation: "Binding", spec: ProblemSpec) -> ProblemSpec:
    """``spec`` with ``DEFAULT_BATCH`` rows where the convention is batched and none were asked for, if the file
    takes them (one probe step); where it does not, ``spec`` as it is, and a note saying so."""
    if spec.batch is not None:
        return spec
    if not implementation.always_batched:  # single vectors are its own default (the question's convention)
        implementation.run_notes += (f"{NOT_EXERCISED} (single vectors are this convention's default): if your code "
                                     f"takes them, --batch {DEFAULT_BATCH} checks what shows only with a batch (a "
                                     f"bias gradient averaged over it, say).",)
        return spec
    batched = replace(spec, batch=DEFAULT_BATCH)
    probe = make_problem(replace(batched, steps=1)).astype(np.dtype(spec.dtype))
    refusal = drive.batch_support(implementation, replace(probe, params={k: read_only(v)
                                                                         for k, v in probe.params.items()}))
    if refusal is None:
        return batched
    implementation.run_notes += (f"batches could not be exercised ({str(refusal).rstrip('.')}): the run uses one "
                                 f"row, so bugs that show only with a batch (a bias gradient averaged over it, say) "
                                 f"are not looked for.",)
    return spec


def step_cache_bytes(implementation: "Binding", spec: ProblemSpec) -> int:
    """What the cache of one forward step of the user's code holds (one probe step of a cell; 0 for a model
    variant, or where the step fails: the run itself says why)."""
    if not spec.model.plain:
        return 0
    probe = make_problem(replace(spec, steps=1)).astype(np.dtype(spec.dtype))
    try:
        run_ = drive.forward(implementation, replace(probe, params={k: read_only(v) for k, v in probe.params.items()}))
    except UsageError:
        return 0
    return drive.cache_bytes(run_.caches[0]) if run_.caches else 0


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


# Where a float64 trace holds at least LARGE_TRACE bytes, the references are traced in TRACE_ORDER, whatever order
# they are reported in: the one whose own computation holds the most while it runs (JAX: its compile and the
# whole scan's buffers) first, when least else is held.  Smaller ones keep the order given (bench/README.md).
TRACE_ORDER = ("jax", "torch")


LARGE_TRACE = 64 << 20


def trace_order(names: Sequence[str], problem: "Problem") -> list[str]:
    """The order in which to trace the references ``names`` for ``problem``."""
    floats_per_step = problem.inputs[0].size + 16 * problem.h0.size  # what a trace holds per step, about
    if problem.steps * floats_per_step * 8 < LARGE_TRACE:
        return list(names)
    return sorted(names, key=lambda name: TRACE_ORDER.index(name) if name in TRACE_ORDER else len(TRACE_ORDER))


def trace_reference(name: str, problem: "Problem", truth_problem: "Problem", forward_names: Sequence[str] = ()
                     ) -> ReferenceRun:
    """Both runs of a reference, ``prepared`` for ``forward_names`` at once (before the next one is traced); the
    traces keep no d*_next (the isolated mode takes step t+1's d*_prev).  The memory each run's computation
    freed is given back before the next one starts."""
    with reference_errors_as_usage():
        module = load(name)
        if problem.dtype == np.float64 or getattr(module, "COMPUTES_IN_FLOAT64", False):
            same_dtype = truth = _traced(module, truth_problem)  # one run serves as both
        else:
            same_dtype, truth = _traced(module, problem), _traced(module, truth_problem)
    ref = ReferenceRun(name, same_dtype, truth, reference_tolerance(module, problem.dtype))
    return prepared(ref, problem, truth_problem, forward_names)


def _traced(module: ModuleType, problem: "Problem") -> "Trace":
    """``module.trace(problem)`` without dh_next and dc_next (copies of dh_prev and dc_prev one step on, which
    ``fed_next`` reads off those), the memory its computation freed given back."""
    trace = module.trace(problem)
    trace = replace(trace, backward={k: v for k, v in trace.backward.items() if k not in ("dh_next", "dc_next")})
    release_free_memory(sum(a.nbytes for a in (*trace.forward.values(), *trace.backward.values())))
    return trace
