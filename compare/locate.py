"""Find the first divergence of each (reference, mode) in the order the computation runs, and say it plainly."""

from dataclasses import dataclass

import numpy as np

from compare.tensors import GATE_NAMES, gate_of, rank

UPSTREAM = {"forward": "h_prev and c_prev", "backward": "dy, dh_next and dc_next"}
FORWARD_HINTS = {"c": "the cell update c = f * c_prev + i * g", "c_tanh": "tanh(c)", "h": "h = o * tanh(c)",
                 "y": "the output head y = h @ Wy + by", "loss": "the loss (sum over steps of the mean squared error)"}


@dataclass(frozen=True)
class Finding:
    """The first place where one mode against one reference departs: what, where, by how much, and why."""

    reference: str
    mode: str
    phase: str
    step: int | None  # None for a whole-sequence value
    gate: str
    tensor: str
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    worst_index: tuple[int, ...] | None
    actual: float
    expected: float
    message: str

    def where(self, name_tensor=False):
        """'backward step 11, gate f, dWf' ('..., tensor dWf' with ``name_tensor``); 'whole sequence' for totals."""
        step = " (whole sequence)" if self.step is None else f" step {self.step}"
        gate = f", gate {self.gate}" if self.gate else ""
        return f"{self.phase}{step}{gate}, {'tensor ' if name_tensor else ''}{self.tensor}"


def failure_finding(reference, mode, raised):
    """An exception in the user's code, located at its mode, phase and step."""
    where = f"{raised.phase} step {raised.step}" if raised.step is not None else f"{raised.phase} (whole sequence)"
    return Finding(reference, mode, raised.phase, raised.step, "", "exception", np.nan, np.nan, np.nan, None,
                   np.nan, np.nan, f"{mode} {where}: {raised.message}")


def order_key(phase, step, tensor, steps):
    """Forward t = 0 ... T-1 then its totals; backward t = T-1 ... 0 then its totals; tensors in run order."""
    if phase == "forward":
        return (0, steps if step is None or step < 0 else step, rank(phase, tensor))
    return (1, steps if step is None or step < 0 else steps - 1 - step, rank(phase, tensor))


def first_divergence(diffs, failures, steps):
    """One ``Finding`` per (reference, mode) that diverged or raised: the earliest in computation order."""
    candidates = {}
    for diff in diffs:
        for k in np.flatnonzero(diff.diverged):
            key = order_key(diff.phase, int(diff.steps[k]), diff.tensor, steps)
            candidates.setdefault((diff.reference, diff.mode), []).append((key, diff, k))
    for failure in failures:
        key = order_key(failure.phase, failure.step, failure.tensor, steps)
        candidates.setdefault((failure.reference, failure.mode), []).append((key, failure, None))
    findings = []
    for (reference, mode), found in candidates.items():
        found.sort(key=lambda item: item[0])
        first_key, first, k = found[0]
        if k is None:
            findings.append(first)
            continue
        diverged_here = [d.tensor for key, d, _ in found if key[:2] == first_key[:2]]
        steps_diverge = (reference, "isolated") in candidates  # the step functions themselves are wrong
        findings.append(_finding(first, k, diverged_here, steps_diverge))
    return tuple(findings)


def _finding(diff, k, diverged_here, steps_diverge):
    step = int(diff.steps[k])
    index = tuple(int(i) for i in np.unravel_index(int(diff.worst_index[k]), diff.shape)) if diff.shape else ()
    where = f"{diff.phase} step {step}" if step >= 0 else f"{diff.phase} (whole sequence)"
    actual, expected = float(diff.actual[k]), float(diff.expected[k])
    if not np.isfinite(actual):
        cause = f"{'NaN' if np.isnan(actual) else 'Inf'} first appears in {diff.tensor}"
    else:
        verb = "diverges" if len(diverged_here) == 1 else "diverge"
        cause = f"{_upstream(diff.mode, diff.phase, step)}{', '.join(diverged_here)} {verb}"
        hint = _sequence_hint(diff, steps_diverge) if diff.mode == "sequence" else suggest(diff.phase, diverged_here)
        cause += f": {hint}" if hint else ""
    a, e = _distinct(actual, expected)
    element = f"{diff.tensor}{list(index)}" if index else diff.tensor
    detail = (f"worst {element} = {a}, expected {e} "
              f"(|err| {diff.max_abs_err[k]:.2e}, allowed {diff.tolerance[k]:.2e})")
    return Finding(diff.reference, diff.mode, diff.phase, step if step >= 0 else None, diff.gate, diff.tensor,
                   float(diff.max_abs_err[k]), float(diff.max_rel_err[k]), float(diff.tolerance[k]), index,
                   actual, expected, f"{diff.mode} {where}: {cause}. {detail}.")


def _sequence_hint(diff, steps_diverge):
    if steps_diverge:
        return "it follows from the step functions, which diverge in isolated mode too"
    if diff.phase == "backward":
        return ("the sequence loop (the order of steps, accumulating dparams, or dy), "
                "unless the step functions diverge too: isolated mode tells")
    if diff.tensor == "loss":
        return FORWARD_HINTS["loss"]
    return "the sequence loop's forward (the state passed from step to step)"


def _upstream(mode, phase, step):
    """What is known to match on the way into the diverging step."""
    if step < 0:
        return "the outputs and the loss match; " if phase == "backward" else "the per-step outputs match; "
    if mode == "sequence":
        return f"outputs before step {step} match; " if step else ""
    return f"{UPSTREAM[phase]} entering step {step} match; "


def _distinct(actual, expected):
    """Both values with just enough digits to tell them apart."""
    for digits in range(6, 18):
        a, e = f"{actual:.{digits}g}", f"{expected:.{digits}g}"
        if a != e:
            return a, e
    return a, e


def suggest(phase, tensors):
    """A short guess at the line to look at, from which tensors diverge together at one step."""
    gates = {gate_of(t) for t in tensors} - {""}
    if phase == "forward":
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
    if len(gates) == 1 and names - {"dh_prev", "dc_prev"} <= {f"dW{g}" for g in gates} | {f"db{g}" for g in gates}:
        return f"the {GATE_NAMES[gates.pop()]}-gate derivative"
    if {"f", "i", "g"} <= gates and "o" not in gates:
        return "dc, the gradient reaching the cell state (shared by the f, i and g gates)"
    if {"f", "i", "g", "o"} <= gates:
        return "dh, the gradient reaching h (all four gates depend on it)"
    if names == {"dh_prev"}:
        return "dh_prev: the gates' contributions to [x, h], or the slice that keeps h's part"
    if names == {"dc_prev"}:
        return "dc_prev = dc * f"
    return ""
