"""Find the first divergence of each (reference, mode) in the order the computation runs, and say it plainly."""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from lstm_compare.lstm.where import Mode, Placed, Where
from lstm_compare.lstm.cell import FORWARD_HINTS, GATE_NAMES, SEQUENCE_FORWARD_TOTALS, gate_of, rank

if TYPE_CHECKING:
    from lstm_compare.errors import ImplementationRaised
    from lstm_compare.usercode.conventions.naming import Naming
    from lstm_compare.measuring.measure import TensorDiff

UPSTREAM = {"forward": "h_prev and c_prev", "backward": "dy, dh_next and dc_next"}
OUTFLOW = {"dx", "dh_prev", "dc_prev"}  # what leaves a backward step: every gate's contribution adds into them


@dataclass(frozen=True)
class Finding(Placed):
    """The first place where one mode against one reference departs: what, where, by how much, and why."""

    where: Where
    step: int | None  # None for a whole-sequence value
    gate: str
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    worst_index: tuple[int, ...] | None
    actual: float
    expected: float
    message: str
    user_tensor: str = ""  # the worst element in the user's own names, where they differ (e.g. 'dWx[3, 11] (o block)')
    in_model: bool = False  # found in a model variant: place() names the layer and direction

    def place(self, name_tensor: bool = False) -> str:
        """'backward step 11, gate f, dWf' ('..., tensor dWf' with ``name_tensor``); 'whole sequence' for totals;
        in a model variant prefixed with 'layer 2, reverse direction, '."""
        return self.where.place(self.step, self.gate, self.user_tensor, name_tensor, self.in_model)


def failure_finding(reference: str, mode: Mode, raised: "ImplementationRaised") -> Finding:
    """An exception in the user's code, located at its mode, phase and step."""
    where = f"{raised.phase} step {raised.step}" if raised.step is not None else f"{raised.phase} (whole sequence)"
    return Finding(Where(reference, mode, raised.phase, "exception"), raised.step, "", np.nan, np.nan, np.nan,
                   None, np.nan, np.nan, f"{mode} {where}: {raised.message}")


def order_key(phase: str, step: int | None, tensor: str, steps: int, layer: int = 1, direction: str = "forward"
              ) -> tuple[int, int, int, int]:
    """Forward t = 0 ... T-1 then its totals; backward t = T-1 ... 0 then its totals; tensors in run order.

    In a model, by the data flow: forward, layer 1's directions (forward, then backward), then layer 2's, ...,
    then the model's head and loss; backward, the head's gradients first, then the layers from the last down
    (each one's directions in reverse), then the model's input gradient.  Steps are each slot's own.
    """
    if layer == 0:  # the model's own: its head and loss (last forward), its head's gradients and dx
        slot = (LAST_SLOT if phase == "forward" or tensor in ("dx", "exception") else -LAST_SLOT)
    else:
        slot = 2 * layer + (direction == "reverse")
        slot = slot if phase == "forward" else -slot
    if phase == "forward":
        return (0, slot, steps if step is None or step < 0 else step, rank(phase, tensor))
    return (1, slot, steps if step is None or step < 0 else steps - 1 - step, rank(phase, tensor))


LAST_SLOT = 1 << 20  # beyond any layer's rank in order_key


def in_model_failure(failure: Finding) -> Finding:
    """An exception finding of a model variant, its message naming the layer and direction (or the whole model,
    for the whole-model functions)."""
    where = failure.where.slot_prefix()
    message = failure.message.replace(f"{failure.mode} ", f"{failure.mode} {where}", 1)
    return replace(failure, in_model=True, message=message)


def order_keys(phase: str, steps: np.ndarray, tensor: str, total: int, layer: int = 1, direction: str = "forward"
               ) -> np.ndarray:
    """``order_key`` of one tensor at each of ``steps`` (-1: a whole-sequence value), as an (S, 4) int64 array."""
    keys = np.empty((len(steps), 4), dtype=np.int64)
    keys[:] = order_key(phase, 0, tensor, total, layer, direction)
    steps = np.asarray(steps, dtype=np.int64)
    keys[:, 2] = np.where(steps < 0, total, steps if phase == "forward" else total - 1 - steps)
    return keys


def first_divergence(diffs: Iterable["TensorDiff"], failures: Iterable[Finding], steps: int, dh_given: bool = False,
                     naming: "Naming | None" = None, in_model: bool = False) -> tuple[Finding, ...]:
    """One ``Finding`` per (reference, mode) that diverged or raised: the earliest in computation order.

    ``dh_given``: the step backward receives dL/dh itself (conventions without a head), rather than computing
    it from dy and dh_next.  ``naming`` (``conventions.naming.Naming``) names the worst element the user's way.
    ``in_model``: the diffs are a model variant's, and each finding names its layer and direction.
    """
    # (reference, mode) -> [(key, diff or failure, k)]
    candidates: dict[tuple[str, str], list[tuple[tuple[int, int, int, int], Any, Any]]] = {}
    for diff in diffs:
        for k in np.flatnonzero(diff.diverged):
            key = order_key(diff.phase, int(diff.steps[k]), diff.tensor, steps, diff.layer, diff.direction)
            candidates.setdefault((diff.reference, diff.mode), []).append((key, diff, k))
    for failure in failures:
        key = order_key(failure.phase, failure.step, failure.tensor, steps, failure.layer, failure.direction)
        candidates.setdefault((failure.reference, failure.mode), []).append((key, failure, None))
    findings = []
    for (reference, mode), found in candidates.items():
        found.sort(key=lambda item: item[0])
        first_key, first, k = found[0]
        if k is None:
            findings.append(first)
            continue
        diverged_here = [d.tensor for key, d, _ in found if key[:3] == first_key[:3]]
        steps_diverge = (reference, "isolated") in candidates  # the step functions themselves are wrong
        findings.append(_finding(first, k, diverged_here, steps_diverge, steps, dh_given, naming, in_model))
    return tuple(findings)


def _finding(diff: "TensorDiff", k: int, diverged_here: list[str], steps_diverge: bool, steps: int, dh_given: bool,
             naming: "Naming | None", in_model: bool = False) -> Finding:
    step = int(diff.steps[k])
    index = tuple(int(i) for i in np.unravel_index(int(diff.worst_index[k]), diff.shape)) if diff.shape else ()
    where = f"{diff.phase} step {step}" if step >= 0 else f"{diff.phase} (whole sequence)"
    if in_model:
        time = f" (time {steps - 1 - step})" if diff.direction == "reverse" and step >= 0 and diff.layer else ""
        where = f"{diff.where.slot_prefix()}{where}{time}"
    actual, expected = float(diff.actual[k]), float(diff.expected[k])
    if not np.isfinite(actual):
        cause = f"{'NaN' if np.isnan(actual) else 'Inf'} first appears in {diff.tensor}"
    else:
        verb = "diverges" if len(diverged_here) == 1 else "diverge"
        cause = f"{_upstream(diff.mode, diff.phase, step, steps)}{', '.join(diverged_here)} {verb}"
        if diff.mode == "sequence":
            hint = (_model_hint(diff, step, diverged_here) if in_model and not steps_diverge
                    else _sequence_hint(diff, step, steps_diverge))
        else:
            hint = suggest(diff.phase, diverged_here, dh_given)
            if naming is not None and diff.phase == "forward" and diff.tensor in naming.probed:
                hint += (" (this gate is read off next_c and next_h with the other gates saturated, so a wrong cell "
                         "update, a wrong h = o * tanh(c), or gate blocks in another order show here too: "
                         "lstm-compare detect tells the order)")
        cause += f": {hint}" if hint else ""
    a, e = _distinct(actual, expected)
    element = f"{diff.tensor}{list(index)}" if index else diff.tensor
    detail = (f"worst {element} = {a}, expected {e} "
              f"(|err| {diff.max_abs_err[k]:.2e}, allowed {diff.tolerance[k]:.2e})")
    yours = naming.element(diff.tensor, index, diff.mode, step) if naming is not None else element
    if yours != element:
        detail += f" (yours: {yours})"
    return Finding(diff.where, step if step >= 0 else None, diff.gate,
                   float(diff.max_abs_err[k]), float(diff.max_rel_err[k]), float(diff.tolerance[k]), index,
                   actual, expected, f"{diff.mode} {where}: {cause}. {detail}.",
                   yours if yours != element else "", in_model)


def _model_hint(diff: "TensorDiff", step: int, diverged_here: Sequence[str]) -> str:
    """What a divergence of the whole-model functions (and not the cell's) suggests: the wiring."""
    if diff.layer == 0:
        if diff.phase == "forward":
            return "the model's head on the last layer's outputs (both directions concatenated, forward first)"
        if diff.tensor == "dx":
            return "the gradient the first layer sends to the inputs (both directions' dx added)"
        return "the head's gradient, from the last layer's outputs and dy"
    slot = f"layer {diff.layer}'s {diff.direction} direction"
    if diff.phase == "backward" and set(diverged_here) <= {"dh0", "dc0"}:
        return (f"{slot}'s initial-state gradient alone (every parameter's matches): its row of dh0, dc0, in "
                f"torch's order (layer 1 forward, layer 1 reverse, layer 2 forward, ...)")
    if diff.phase == "forward":
        feeds = f"layer {diff.layer - 1}'s outputs h" if diff.layer > 1 else "the inputs"
        reverse = (", the order it runs (t = T-1 ... 0) and the flip of its outputs back into time order"
                   if diff.direction == "reverse" else "")
        start = "its initial state (its row of h0, c0), " if step == 0 else ""
        return f"how the model feeds {slot}: {start}its input ({feeds}, in time order){reverse}"
    return (f"the gradient reaching {slot} from outside its recurrence (the layer above's dL/d input, or the "
            f"head's, split between the directions and added into each step's dh), or the recurrence itself "
            f"(the order its steps are differentiated in, dh and dc carried from step to step)")


def _sequence_hint(diff: "TensorDiff", step: int, steps_diverge: bool) -> str:
    if steps_diverge:
        return "it follows from the step functions, which diverge in isolated mode too"
    if diff.phase == "backward":
        return ("the sequence loop (the order of steps, accumulating dparams, dy, or gradients not carried "
                "between steps: dh_prev and dc_prev into the step before), unless the step functions diverge too: "
                "isolated mode tells")
    if diff.tensor in SEQUENCE_FORWARD_TOTALS:  # the loss, the final h and c: computed once, after the steps
        return FORWARD_HINTS[diff.tensor]
    if step == 0:
        return ("the whole-sequence code may ignore the initial state (h0, c0) it is given: "
                "a run with --zero-state tells")
    return "the sequence loop's forward (the state passed from step to step)"


def _upstream(mode: str, phase: str, step: int, steps: int) -> str:
    """What is known to match on the way into the diverging step."""
    if step < 0:
        return "the outputs and the loss match; " if phase == "backward" else "the per-step outputs match; "
    if mode == "sequence":
        if phase == "backward":
            return f"steps after {step} match; " if step < steps - 1 else ""
        return f"outputs before step {step} match; " if step else ""
    return f"{UPSTREAM[phase]} entering step {step} match; "


def _distinct(actual: float, expected: float) -> tuple[str, str]:
    """Both values with just enough digits to tell them apart."""
    for digits in range(6, 18):
        a, e = f"{actual:.{digits}g}", f"{expected:.{digits}g}"
        if a != e:
            return a, e
    return a, e


def suggest(phase: str, tensors: Sequence[str], dh_given: bool = False) -> str:
    """A short guess at the line to look at, from which tensors diverge together at one step."""
    gates = {gate_of(t) for t in tensors} - {""}
    if phase == "forward":
        if {"cache.xh", "cache.c_prev"} & set(tensors):
            return ("the state the step is given: its cache keeps another h_prev or c_prev than it was passed, "
                    "so it ignores or overwrites that state (every gate follows from it)")
        first = tensors[0]
        if gate_of(first):
            part = "pre-activation" if first.endswith("_pre") else "activation"
            return f"the {GATE_NAMES[gate_of(first)]} gate's {part}"
        if first.startswith("cache."):
            return f"the cache entry {first.removeprefix('cache.')}, which the backward pass reads"
        return FORWARD_HINTS.get(first, "")
    names = set(tensors)
    if names <= {"dWy", "dby"}:
        return "the output head's gradient"
    if len(names) == 1 and next(iter(names))[:2] == "db" and gates:
        gate = gates.pop()
        return f"the {GATE_NAMES[gate]} gate's bias gradient itself: dW{gate} matches, so d{gate}_pre is right"
    if len(gates) == 1 and names - OUTFLOW <= {f"d{kind}{g}" for g in gates for kind in "Wbp"}:
        return f"the {GATE_NAMES[gates.pop()]}-gate derivative"
    if {"f", "i", "g"} <= gates and "o" not in gates:
        return "dc, the gradient reaching the cell state (shared by the f, i and g gates)"
    if {"f", "i", "g", "o"} <= gates:
        if dh_given:
            return ("the per-gate derivatives (the dh entering the step matches, so it is not dh): each gate's "
                    "activation derivative, or the gate blocks' order in the fused gradient")
        return ("dh = dy @ Wy.T + dh_next, computed inside the step from inputs that match (all four gates "
                "depend on it), or each gate's own derivative")
    if names == {"dh_prev"}:
        return "dh_prev: the gates' contributions to [x, h], or the slice that keeps h's part"
    if names == {"dc_prev"}:
        return "dc_prev = dc * f"
    return ""
