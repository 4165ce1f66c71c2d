"""Measure one tensor against its float64 truth, for one step or for many stacked steps at once."""

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from compare.tolerance import NOISE_FACTOR, Tolerance


@dataclass(frozen=True)
class Expectation:
    """What one reference expects of one tensor over S steps, prepared once and shared by every mode."""

    truth: np.ndarray  # (S, n) float64: the reference run in float64
    scale: np.ndarray  # (S,): max |truth|
    noise_floor: np.ndarray  # (S,): max |same-dtype reference - truth|
    tolerance: np.ndarray  # (S,): the largest |actual - truth| allowed

    @property
    def shape(self) -> tuple[int, int]:
        return self.truth.shape

    def first(self, steps: int) -> "Expectation":
        """The expectation for the first ``steps`` steps only (a run that stopped early)."""
        return self.rows(slice(0, steps))

    def rows(self, rows: slice | list[int]) -> "Expectation":
        """The expectation for a subset of its steps (a slice or a list of row numbers)."""
        return Expectation(self.truth[rows], self.scale[rows], self.noise_floor[rows], self.tolerance[rows])


def expectation(truth: np.ndarray, same_dtype_reference: np.ndarray, tolerance: Tolerance) -> Expectation:
    """An ``Expectation`` from a reference's float64 run and its run in the implementation's dtype.

    allowed = atol + rtol * max|truth| + NOISE_FACTOR * max|same-dtype - truth|, per step (see tolerance.py).
    """
    S = truth.shape[0]
    t = np.asarray(truth, dtype=np.float64).reshape(S, -1)  # (S, n)
    if t.shape[1] == 0:
        scale = noise = np.zeros(S)
    else:  # max|.| as max(max, -min): two reads, no temporary (casting first keeps NumPy on its fast path)
        scale = np.maximum(t.max(axis=1), -t.min(axis=1))
        if same_dtype_reference is truth:
            noise = np.zeros(S)
        else:
            d = np.asarray(same_dtype_reference).reshape(S, -1).astype(np.float64)
            d -= t
            noise = np.maximum(d.max(axis=1), -d.min(axis=1))
    return Expectation(t, scale, noise, tolerance.atol + tolerance.rtol * scale + NOISE_FACTOR * noise)


@dataclass(frozen=True)
class TensorDiff:
    """How one tensor of the implementation compares with one reference, at every compared step.

    Fields are arrays over those steps (``steps``; -1 stands for a whole-sequence value).  Errors are
    measured against the reference's float64 run; ``max_rel_err`` is norm-wise: max |a - t| / max |t|.
    """

    reference: str
    mode: str
    phase: str
    tensor: str
    gate: str
    shape: tuple[int, ...]
    steps: np.ndarray
    max_abs_err: np.ndarray
    max_rel_err: np.ndarray
    worst_index: np.ndarray  # flat index of the worst element within the step's tensor
    actual: np.ndarray
    expected: np.ndarray
    n_mismatch: np.ndarray
    n_total: int
    tolerance: np.ndarray
    noise_floor: np.ndarray
    diverged: np.ndarray
    layer: int = 1  # the model's layer (references/model.py); 0: the model's own head, loss and input gradient
    direction: str = "forward"  # the layer's direction: "forward" or "backward" ("" with layer 0)

    @property
    def any_diverged(self) -> bool:
        return bool(self.diverged.any())


def measure(actual: np.typing.ArrayLike, expected: Expectation) -> dict[str, np.ndarray]:
    """Statistics of ``actual`` (S, ...) against an ``Expectation``: a dict of per-step arrays.

    NaN or Inf in ``actual`` where the truth is finite always fails.
    """
    S, n = expected.shape
    rows = np.arange(S)
    a = np.asarray(actual).reshape(S, n)
    if a.dtype == np.float64:
        err = np.subtract(a, expected.truth)  # (S, n)
    else:  # cast first: NumPy's mixed-dtype subtract takes a slow buffered path
        err = a.astype(np.float64)
        err -= expected.truth
    np.abs(err, out=err)
    if n == 0:
        zeros = np.zeros(S)
        return dict(max_abs_err=zeros, max_rel_err=zeros, worst_index=np.zeros(S, dtype=np.intp), actual=zeros,
                    expected=zeros, n_mismatch=np.zeros(S, dtype=int), tolerance=expected.tolerance,
                    noise_floor=expected.noise_floor, diverged=np.zeros(S, dtype=bool))
    worst = err.argmax(axis=1)  # the first NaN, if any
    max_abs = err[rows, worst]
    not_a_number = np.isnan(max_abs)
    max_abs[not_a_number] = np.inf
    n_mismatch = np.zeros(S, dtype=np.intp)
    for k in np.flatnonzero(max_abs > expected.tolerance):  # counting costs a pass: only where something fails
        n_mismatch[k] = np.count_nonzero(err[k] > expected.tolerance[k]) + np.count_nonzero(np.isnan(err[k]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(expected.scale > 0, max_abs / expected.scale, np.where(max_abs > 0, np.inf, 0.0))
    return dict(max_abs_err=max_abs, max_rel_err=rel, worst_index=worst,
                actual=a[rows, worst].astype(np.float64),
                expected=expected.truth[rows, worst], n_mismatch=n_mismatch, tolerance=expected.tolerance,
                noise_floor=expected.noise_floor, diverged=n_mismatch > 0)


def tensor_diff(labels: tuple[str, str, str, str, str], shape: Sequence[int], steps: Sequence[int] | np.ndarray,
                stats: Sequence[dict[str, np.ndarray]], slot: tuple[int, str] = (1, "forward")) -> TensorDiff:
    """A ``TensorDiff`` from its labels (reference, mode, phase, tensor, gate), per-step ``measure`` dicts, and
    the model's (layer, direction) it belongs to."""
    merged: dict[str, Any] = {key: np.concatenate([s[key] for s in stats]) for key in stats[0]}
    n_total = int(np.prod(shape))
    return TensorDiff(*labels, shape=tuple(shape), steps=np.asarray(steps), n_total=n_total, **merged,
                      layer=slot[0], direction=slot[1])
