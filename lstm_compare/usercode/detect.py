"""Which convention a file follows, and which weight layout its step forward really uses.

The layout is found by running the file's forward step once, with identical weights, under every candidate
layout (the order of the fused gate blocks, the order of the parts a matrix acts on) and keeping the ones whose
h and c match the reference.  When none does, the gates that match under no candidate are named.
"""

import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from lstm_compare.usercode.conventions import bind, detect
from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.references import load
from lstm_compare.lstm.cell import GATES

if TYPE_CHECKING:
    from lstm_compare.usercode.conventions.base import Binding, Source
    from lstm_compare.lstm.records import Problem

PROBE = ProblemSpec(steps=1, hidden=4, inputs=3, outputs=1, seed=7)
MATCH = 1e-9  # norm-wise: far above float64 rounding of one step, far below any layout mistake
PART_WORDS = {"x": "x", "h": "h", "1": "a bias row"}


@dataclass(frozen=True)
class Candidate:
    layout: tuple[Matrix, ...]
    error: float  # the worst norm-wise error of h and c; inf when the step raised
    gates: dict[str, float]  # gate -> norm-wise error of that gate's activation (where it could be observed)
    timed_out: bool = False


@dataclass(frozen=True)
class Detection:
    name: str
    convention: str
    reason: str
    declared: tuple[Matrix, ...]  # the convention's own layout
    matching: tuple[tuple[Matrix, ...], ...]  # every candidate layout that reproduces the reference
    unmatched_gates: tuple[str, ...]  # gates that match under no candidate (when none matches)
    notes: tuple[str, ...] = ()  # how the file was loaded and probed

    @property
    def ok(self) -> bool:
        return self.declared in self.matching


def run_detection(source: "Source", convention: str = "auto") -> Detection:
    """Bind ``source`` and try every candidate layout on one forward step: a ``Detection``."""
    binding = bind(source, convention)
    found, reason = detect(binding.module)
    reason = reason if found == binding.convention else (f"named with --convention {binding.convention}"
                                                         if convention != "auto" else "the closest match by names")
    problem = make_problem(PROBE)
    truth = load("torch").trace(problem).forward
    layouts = candidate_layouts(binding.layout)
    candidates = [_try(binding, layouts[0], problem, truth, strict=True)]  # its own: a failure is the answer
    for layout in layouts[1:]:
        candidates.append(_try(binding, layout, problem, truth))
        if candidates[-1].timed_out:  # one slow call is enough: do not wait for every layout
            break
    matching = tuple(c.layout for c in candidates if c.error <= MATCH)
    unmatched = () if matching else tuple(g for g in GATES if not any(c.gates.get(g, np.inf) <= MATCH
                                                                      for c in candidates))
    return Detection(binding.name, binding.convention, reason,  # type: ignore[arg-type]  # detected: it has a reason
                     tuple(binding.layout), matching, unmatched, (*binding.notes, *binding.run_notes))


def candidate_layouts(layout: Sequence[Matrix]) -> list[tuple[Matrix, ...]]:
    """``layout`` with its fused gate blocks in every order and its multi-part matrices' parts in every order
    (the same order for every matrix: it is one property of the code), the given layout first."""
    fused = next((m.gates for m in layout if len(m.gates) > 1), None)
    parts = next((m.rows for m in layout if len(m.rows) > 1), None)
    gate_orders = list(itertools.permutations(fused)) if fused else [None]
    part_orders = list(itertools.permutations(parts)) if parts else [None]
    out = []
    for gates, rows in itertools.product(gate_orders, part_orders):
        out.append(tuple(replace(m, gates=gates if gates and len(m.gates) > 1 else m.gates,
                                 rows=rows if rows and len(m.rows) > 1 else m.rows) for m in layout))
    return sorted(set(out), key=lambda candidate: candidate != tuple(layout))


def _try(binding: "Binding", layout: tuple[Matrix, ...], problem: "Problem", truth: Mapping[str, np.ndarray],
         strict: bool = False) -> Candidate:
    """One forward step under ``layout``.  ``strict``: a failure is the user's to see (UsageError, one line)."""
    trial = binding.with_layout(layout)
    try:
        step = trial.step_forward(problem.params, problem.inputs[0], problem.h0, problem.c0, 0)
    except ImplementationRaised as raised:
        if strict:
            raise UsageError(f"{binding.name}: detect could not run its forward step: {raised.message}") from None
        return Candidate(layout, np.inf, {}, "timed out" in raised.message)
    except (UsageError, ValueError, IndexError):
        if strict:
            raise
        return Candidate(layout, np.inf, {})
    errors = {name: _normwise(step.tensors[name], truth[name][0]) for name in ("h", "c", *GATES)
              if name in step.tensors}
    return Candidate(layout, max(errors["h"], errors["c"]), {g: errors[g] for g in GATES if g in errors})


def _normwise(actual: np.typing.ArrayLike, expected: np.typing.ArrayLike) -> float:
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape or not np.isfinite(actual).all():
        return np.inf
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-300))


def describe_layout(layout: Sequence[Matrix]) -> str:
    """'your gate blocks are ordered i, f, o, g; your weights act on [h; x] from the left', in plain words."""
    fused = next((m for m in layout if len(m.gates) > 1), None)
    parts = next((m for m in layout if len(m.rows) > 1), None)
    words = []
    if fused is not None:
        words.append(f"your gate blocks are ordered {', '.join(fused.gates)}")
    if parts is not None:
        stacked = "; ".join(PART_WORDS[p] for p in parts.rows)
        side = "from the left (W @ v on column vectors)" if parts.left else "from the right (v @ W)"
        words.append(f"your weights act on [{stacked}] {side}")
    elif any(m.rows == ("x",) for m in layout):
        words.append("your weights act on x and h through separate matrices")
    return "; ".join(words) or "one matrix per gate and part"


def summarize(detection: Detection) -> str:
    lines = [f"lstm-compare detect: {detection.name}",
             f"convention: {detection.convention} ({detection.reason})"]
    probe = f"one forward step with identical weights (T=1 H={PROBE.hidden} X={PROBE.inputs}), against torch"
    if detection.ok:
        lines.append(f"layout: {describe_layout(detection.declared)}, as the {detection.convention} convention "
                     f"says ({probe}).")
    elif detection.matching:
        lines.append(f"layout: {describe_layout(detection.matching[0])} ({probe}), not what the "
                     f"{detection.convention} convention says ({describe_layout(detection.declared)}): declare "
                     f"your layout, or fix the code.")
    else:
        gates = ", ".join(detection.unmatched_gates) or "none"
        lines.append(f"layout: no candidate layout reproduces h and c ({probe}); gates that match under no "
                     f"ordering: {gates}. Look at their equations first.")
    lines += [f"note: {note}" for note in detection.notes]
    return "\n".join(lines)
