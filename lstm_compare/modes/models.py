"""Compare a model variant (``references/model.py``: layers, directions, a projection, peepholes).

Each (layer, direction) is compared as one cell: the user's step functions are fed, per reference, exactly what that
reference's model feeds the slot (its input sequence in processing order, its initial state, and in the backward pass
dL/dh_t from outside the recurrence: the head's, or the layer above's), and measured in the isolated and chained modes
like a single cell.  The harness composes the layers and directions itself, so a cell bug is located at the first slot,
step and gate where it shows.  The user's own whole-model functions, when the file has them, run in sequence mode
(``lstm_compare.usercode.conventions.model_functions``), which is where a bug in how the layers and directions are wired
shows.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.locating.locate import Finding, first_divergence, in_model_failure
from lstm_compare.lstm.cell import BACKWARD_ORDER, FORWARD_ORDER, PEEPHOLES, PROJECTION, VARIANT_PARAM_GRADS
from lstm_compare.lstm.model import ModelProblem, ModelTrace, Slot, as_cell_trace, slot_index, slot_params
from lstm_compare.lstm.problem import ProblemSpec, make_model_problem
from lstm_compare.lstm.records import Problem
from lstm_compare.lstm.where import Phase, by_reference_and_mode
from lstm_compare.measuring.measure import expectation, widened
from lstm_compare.modes.sequence import stepwise_loss
from lstm_compare.measuring.tolerance import Tolerance, reference_tolerance
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.notes import precision_note
from lstm_compare.modes.records import Config, ReferenceRun, Report, TracedReferences, reference_errors_as_usage
from lstm_compare.modes.steps import compare_steps
from lstm_compare.references import load_model
from lstm_compare.usercode import drive
from lstm_compare.usercode.conventions.model_functions import ModelSequenceRun, model_functions
from lstm_compare.usercode.guard import read_only

if TYPE_CHECKING:
    from lstm_compare.measuring.measure import TensorDiff
    from lstm_compare.usercode.conventions.base import Binding

HEAD_ONLY = ("y", "dWy", "dby")  # a slot's identity head: not the user's, never compared


@dataclass(frozen=True)
class ModelReference:
    """One reference's run of the model in the run's dtype and in float64 (the same object in a float64 run)."""

    name: str
    same_dtype: ModelTrace
    truth: ModelTrace
    tolerance: Tolerance


def run_model(implementation: "Binding", config: Config) -> Report:
    """``pipeline.run`` for a model variant: every slot's step modes, then the whole-model sequence mode."""
    spec, model = config.spec, config.spec.model
    try:
        model.check(spec.hidden)
    except ValueError as error:
        raise UsageError(str(error)) from None
    _check_supported(implementation, spec)
    truth = make_model_problem(spec)
    problem = truth.astype(np.dtype(spec.dtype))
    problem = replace(problem, params={k: read_only(v) for k, v in problem.params.items()})
    refs = [_trace(name, problem, truth) for name in config.references]
    diffs: list["TensorDiff"] = []
    failures: list[Finding] = []
    returned: list[dict[str, Any]] = []
    step_modes = tuple(mode for mode in config.modes if mode != "sequence")
    if step_modes:
        for slot in model.slots():
            for ref in refs:
                collector = Collector(slot.layer, slot.direction)
                returned += _compare_slot(implementation, problem, truth, ref, slot, step_modes, collector,
                                          batch_check=slot == model.slots()[0] and ref is refs[0])
                diffs += collector.finish()
                failures += collector.failures
    notes, skipped = [*implementation.notes, *implementation.run_notes], []
    if "sequence" in config.modes:
        functions = model_functions(implementation)
        if functions is None:
            skipped.append(f"sequence mode skipped: {implementation.name} does not define the whole-model functions "
                           f"lstm_model_loss and dlstm_model_loss.")
        else:
            with implementation.fresh_state().active():
                sequence = functions.run(problem)
            returned += [sequence.model_forward, *sequence.forward.values()]
            for collector in _measure_sequence(sequence, problem, refs):
                diffs += collector.finish()
                failures += collector.failures
    notes += precision_note(implementation.name, problem.dtype, returned)
    failures = [in_model_failure(f) for f in failures]
    order = by_reference_and_mode(config.references)
    findings = first_divergence(diffs, failures, spec.steps, not implementation.has_head, None, in_model=True)
    return Report(implementation.name, config, tuple(diffs), tuple(sorted(findings, key=order)),
                  tuple(sorted(failures, key=order)), tuple(skipped), None, tuple(notes))


def _check_supported(implementation: "Binding", spec: ProblemSpec) -> None:
    refusal = model_refusal(implementation, spec)
    if refusal:
        raise UsageError(refusal)


def model_refusal(implementation: "Binding", spec: ProblemSpec) -> str | None:
    """Why the file's cell cannot take the model's peepholes or projection (one sentence), or None.

    They need a cell whose parameters are a dict the user's code reads by name (the question's convention), and a cell
    that reads them: one step forward and backward must return a projected h and the gradients of pf, pi, po
    or Wr.  An exception in that step is named with its line (a cell that ignores Wr fails at its head).
    """
    model = spec.model
    if not (model.peepholes or model.proj):
        return None
    what = " and ".join(["peepholes"] * model.peepholes + ["a projection"] * bool(model.proj))
    advice = f"leave out {' and '.join(['--peepholes'] * model.peepholes + ['--proj'] * bool(model.proj))}"
    if not implementation.takes_variant_params:
        return (f"{implementation.name} follows the {implementation.label or implementation.convention} convention, "
                f"whose cell has no parameters for {what}: use a file in the question's convention (params with "
                f"{', '.join(PEEPHOLES)} and {PROJECTION}, as lstm_compare/handrolled/variant_lstm.py), or {advice}.")
    H = spec.hidden
    probe = make_model_problem(ProblemSpec(steps=1, hidden=H, inputs=spec.inputs, model=model))
    S = model.state_size(H)
    cell = Problem(cell_params(probe, model.slots()[0]), probe.inputs, np.zeros((1, S)), probe.h0[0], probe.c0[0],
                   np.ones((1, S)))
    try:
        run_ = drive.forward(implementation, cell)
        if run_.failure is not None:
            raise run_.failure
        drive.backward_step(implementation, cell, 0, np.ones(S), np.zeros(S), np.zeros(H), run_.caches[0], run_.state)
    except UsageError as error:
        return f"{implementation.name}'s cell does not take {what} ({str(error).rstrip('.')}); {advice}."
    except ImplementationRaised as raised:
        return (f"{implementation.name}'s cell cannot run one step with {what} ({raised.message.rstrip('.')}): "
                f"if it reads {', '.join(PEEPHOLES)} or {PROJECTION} from params, that line is where to look; "
                f"otherwise {advice}.")
    return None



def _trace(name: str, problem: ModelProblem, truth: ModelProblem) -> ModelReference:
    with reference_errors_as_usage():
        module = load_model(name)
        if problem.dtype == np.float64:
            same = exact = module.trace_model(truth)
        else:
            same, exact = module.trace_model(problem), module.trace_model(truth)
    return ModelReference(name, same, exact, reference_tolerance(module, problem.dtype))


def cell_params(problem: ModelProblem, slot: Slot) -> dict[str, np.ndarray]:
    """One slot's cell parameters (read-only) with an identity head, Wy = I and by = 0: its y is its own h."""
    S = problem.model.state_size(problem.hidden)
    head = {"Wy": np.eye(S, dtype=problem.dtype), "by": np.zeros(S, dtype=problem.dtype)}
    return {name: read_only(value) for name, value in {**slot_params(problem.model, problem.params, slot),
                                                       **head}.items()}


def slot_problem(problem: ModelProblem, trace: ModelTrace, slot: Slot) -> Problem:
    """The single-cell problem of one slot as ``trace``'s reference runs it: its parameters with an identity head,
    its input sequence and initial state, and the gradient reaching its h from outside (``Problem.upstream``)."""
    st = trace.slots[slot]
    k = slot_index(problem.model, slot)
    dtype = problem.dtype
    upstream = np.asarray(st.backward["dh_out"], dtype=dtype)
    return Problem(cell_params(problem, slot), np.asarray(st.inputs, dtype=dtype),
                   np.zeros_like(upstream), problem.h0[k], problem.c0[k], upstream)


def _compare_slot(implementation: "Binding", problem: ModelProblem, truth: ModelProblem, ref: ModelReference,
                  slot: Slot, modes: tuple[str, ...], collector: Collector, batch_check: bool
                  ) -> list[dict[str, np.ndarray]]:
    """The step modes of one slot against one reference."""
    same_problem = slot_problem(problem, ref.same_dtype, slot)
    truth_problem = slot_problem(truth, ref.truth, slot)
    same_trace = as_cell_trace(ref.same_dtype, problem, slot)
    cell = ReferenceRun(ref.name, same_trace, same_trace if ref.truth is ref.same_dtype
                        else as_cell_trace(ref.truth, truth, slot), ref.tolerance)
    if batch_check and same_problem.inputs.ndim == 3:
        refusal = drive.batch_support(implementation, same_problem)
        if refusal:
            raise UsageError(refusal.sentence(implementation.name))
    forward_names = [name for name in implementation.forward_names
                     if name not in HEAD_ONLY and (name in same_trace.forward or name.startswith("cache."))]
    variant = {name for name in VARIANT_PARAM_GRADS if name[1:] in same_problem.params}
    backward_names = [name for name in BACKWARD_ORDER
                      if (name in implementation.backward_names or name in variant) and name not in HEAD_ONLY]
    return compare_steps(implementation, same_problem, truth_problem, TracedReferences([cell]), modes, collector,
                         forward_names,
                         backward_names)


def _measure_sequence(run: ModelSequenceRun, problem: ModelProblem, refs: Sequence[ModelReference]
                      ) -> list[Collector]:
    """The whole-model functions' results against each reference: per slot its h and c at every step (in the slot's
    processing order) and its parameters' and initial state's gradients; the model's outputs, loss, head
    gradients and input gradient.  One collector per slot and reference, and one per reference for the model's own."""
    model = problem.model
    collectors = []
    for ref in refs:
        for slot in model.slots():
            k = slot_index(model, slot)
            slot_collector = Collector(slot.layer, slot.direction)
            collectors.append(slot_collector)
            for name, value in run.forward.get(slot, {}).items():
                truth, same = ref.truth.slots[slot].forward[name], ref.same_dtype.slots[slot].forward[name]
                slot_collector.add(ref.name, "sequence", "forward", name, np.arange(problem.steps), value,
                                   expectation(truth, same, ref.tolerance))
            for name, value in run.backward.get(slot, {}).items():
                if name in ("dh0", "dc0"):
                    truth, same = getattr(ref.truth.totals, name)[k], getattr(ref.same_dtype.totals, name)[k]
                else:
                    truth = ref.truth.totals.grads[name[1:] + slot.suffix]
                    same = ref.same_dtype.totals.grads[name[1:] + slot.suffix]
                slot_collector.add(ref.name, "sequence", "backward", name, [-1], np.asarray(value)[None],
                                   expectation(truth[None], same[None], ref.tolerance))
        collector = Collector(0, "")
        collectors.append(collector)
        phases: tuple[tuple[Phase, Mapping[str, Any]], ...] = (("forward", run.model_forward),
                                                               ("backward", run.model_backward))
        for phase, values in phases:
            for name in dict.fromkeys(n for n in (*FORWARD_ORDER, "loss", *BACKWARD_ORDER) if n in values):
                steps, truth, same = _model_expected(ref, name)
                actual = np.asarray(values[name])
                actual = actual if len(steps) > 1 or steps[0] >= 0 else actual[None]
                expected = expectation(truth, same, ref.tolerance)
                if name == "loss" and ref.same_dtype is not ref.truth:  # float64: the table alone
                    loss = stepwise_loss(ref.same_dtype.totals.outputs.astype(problem.dtype), problem.targets)
                    expected = widened(expected, loss[None], ref.tolerance)
                collector.add(ref.name, "sequence", phase, name, steps, actual, expected)
        if run.failure is not None:
            collector.fail(ref.name, "sequence", run.failure)
    return collectors


def _model_expected(ref: ModelReference, name: str) -> tuple[np.ndarray | list[int], np.ndarray, np.ndarray]:
    """(steps, truth, same-dtype) of one model-level result: y and dx per step; loss, dWy, dby whole-sequence."""
    truth, same = ref.truth.totals, ref.same_dtype.totals
    if name == "y":
        return np.arange(truth.outputs.shape[0]), truth.outputs, same.outputs
    if name == "dx":
        return np.arange(truth.dinputs.shape[0]), truth.dinputs, same.dinputs
    if name == "loss":
        return [-1], np.array([truth.loss]), np.array([same.loss])
    return [-1], truth.grads[name[1:]][None], same.grads[name[1:]][None]
