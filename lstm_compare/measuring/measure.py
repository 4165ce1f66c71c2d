"""Measure one tensor against its float64 truth, for one step or for many stacked steps at once."""

import sys
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from lstm_compare.measuring.tolerance import Tolerance
from lstm_compare.lstm.where import Placed, Where
from lstm_compare.lstm.cell import gate_of


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

    def rows(self, rows: slice | list[int]) -> "Expectation":
        """The expectation for a subset of its steps (a slice or a list of row numbers)."""
        return Expectation(self.truth[rows], self.scale[rows], self.noise_floor[rows], self.tolerance[rows])


@dataclass(frozen=True)
class OuterExpectation:
    """An ``Expectation`` whose truth is a per-step outer product a_s b_s^T (a weight's contribution at one
    unbatched step), kept as its two factors: the (S, A*C) array is formed only where something must read it."""

    a: np.ndarray  # (S, A) float64
    b: np.ndarray  # (S, C) float64
    scale: np.ndarray  # (S,): max |a_s b_s^T|
    noise_floor: np.ndarray  # (S,)
    tolerance: np.ndarray  # (S,)

    @property
    def shape(self) -> tuple[int, int]:
        return self.a.shape[0], self.a.shape[1] * self.b.shape[1]

    @cached_property
    def truth(self) -> np.ndarray:
        """The formed (S, A*C) float64 array, exactly as ``lstm_compare.lstm.cell.stepwise_outer`` forms it (once)."""
        return outer_rows(self.a, self.b)

    def rows(self, rows: slice | list[int]) -> "OuterExpectation":
        return OuterExpectation(self.a[rows], self.b[rows], self.scale[rows], self.noise_floor[rows],
                                self.tolerance[rows])


AnyExpectation = Expectation | OuterExpectation


def outer_rows(a: np.ndarray, b: np.ndarray, dtype: "np.typing.DTypeLike | None" = None) -> np.ndarray:
    """Per row s the outer product a_s b_s^T, flattened: (S, A), (S, C) -> (S, A*C); each product rounded in the
    factors' dtype, then cast to ``dtype`` if one is given.

    Where torch is already imported (it is whenever the torch reference runs), large ones are formed by torch's
    broadcast multiply, which is faster: one correctly rounded product per element, the same bits as NumPy's
    (a test checks it, NaN, Inf, zeros and subnormals included).
    """
    (S, A), C = a.shape, b.shape[-1]
    out_dtype = a.dtype if dtype is None else np.dtype(dtype)
    torch = sys.modules.get("torch")
    if torch is not None and S * A * C >= _TORCH_MIN_ELEMENTS and _torch_readable(a, b, out_dtype):
        out = torch.empty((S, A, C), dtype=_TORCH_DTYPES[out_dtype], device="cpu")
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)  # a loaded 2-core machine: one thread, as the torch reference runs
        try:
            torch.mul(torch.from_numpy(a.reshape(S, A, 1)), torch.from_numpy(b.reshape(S, 1, C)), out=out)
        finally:
            if threads != 1:
                torch.set_num_threads(threads)
        return out.numpy().reshape(S, A * C)
    formed = (a[:, :, None] * b[:, None, :]).reshape(S, -1)
    return formed if dtype is None else formed.astype(dtype)


_TORCH_MIN_ELEMENTS = 1 << 12  # below this, NumPy's fewer calls win
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_TORCH_DTYPES: dict[np.dtype[Any], Any] = {}  # NumPy float dtype -> torch's, filled on first use


def _torch_readable(a: np.ndarray, b: np.ndarray, out_dtype: np.dtype[Any]) -> bool:
    """Whether torch can read ``a`` and ``b`` in place and multiplies them as NumPy does: both float32 or both
    float64 (the result in either), 2-D, writeable (torch warns on read-only memory), C-contiguous."""
    if a.dtype != b.dtype or a.dtype not in _FLOATS or out_dtype not in _FLOATS or a.ndim != 2 or b.ndim != 2:
        return False
    if not (a.flags.writeable and b.flags.writeable and a.flags.c_contiguous and b.flags.c_contiguous):
        return False
    if not _TORCH_DTYPES:
        import torch

        _TORCH_DTYPES.update({_FLOATS[0]: torch.float32, _FLOATS[1]: torch.float64})
    return True


def outer_scale(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max_ij |fl(a_si b_sj)| per row s, from the factors alone: rounding is monotonic, so the largest product
    in magnitude is fl(max|a_s| * max|b_s|) (a NaN in a factor makes it NaN, as in the formed array)."""
    if a.shape[1] == 0 or b.shape[1] == 0:
        return np.zeros(a.shape[0])
    return np.abs(a).max(axis=1) * np.abs(b).max(axis=1)


def outer_expectation(truth: tuple[np.ndarray, np.ndarray], same_dtype_reference: tuple[np.ndarray, np.ndarray],
                      tolerance: Tolerance) -> OuterExpectation:
    """``expectation`` for a per-step outer product given as its factors (a (S, A), b (S, C)), in float64 and in
    the implementation's dtype (the same tuple object in a float64 run); the same figures, bit for bit."""
    a, b = (np.asarray(f, dtype=np.float64) for f in truth)
    S = a.shape[0]
    scale = outer_scale(a, b)
    if same_dtype_reference is truth or a.shape[1] * b.shape[1] == 0:
        noise = np.zeros(S)
    else:
        noise = outer_noise(a, b, *same_dtype_reference)
    return OuterExpectation(a, b, scale, noise, tolerance.allowed(scale, noise))


def outer_noise(a: np.ndarray, b: np.ndarray, a_same: np.ndarray, b_same: np.ndarray) -> np.ndarray:
    """max_ij |a_same_si b_same_sj - a_si b_sj| per row s (products rounded in their own dtypes), as
    ``expectation`` measures it on the formed arrays."""
    from lstm_compare.measuring import kernels

    if kernels.enabled(a_same, b_same):
        return kernels.outer_noise(a, b, a_same, b_same)
    S = a.shape[0]
    d = outer_rows(a_same, b_same, np.float64)
    d -= outer_rows(a, b)
    return np.maximum(d.max(axis=1), -d.min(axis=1)).reshape(S)


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
    return Expectation(t, scale, noise, tolerance.allowed(scale, noise))


def widened(expected: Expectation, same_dtype_alternative: np.ndarray, tolerance: Tolerance) -> Expectation:
    """``expected`` whose noise floor also covers ``same_dtype_alternative``: another way a correct implementation
    may compute the tensor in the run's dtype (a loss summed step by step, say) and its distance from the truth."""
    other = np.abs(np.asarray(same_dtype_alternative, dtype=np.float64).reshape(expected.truth.shape)
                   - expected.truth)
    noise = np.maximum(expected.noise_floor, other.max(axis=1) if other.shape[1] else 0.0)
    return replace(expected, noise_floor=noise, tolerance=tolerance.allowed(expected.scale, noise))


@dataclass(frozen=True)
class TensorDiff(Placed):
    """How one tensor of the implementation compares with one reference, at every compared step.

    Fields are arrays over those steps (``steps``; -1 stands for a whole-sequence value).  Errors are
    measured against the reference's float64 run; ``max_rel_err`` is norm-wise: max |a - t| / max |t|.
    """

    where: Where
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

    @property
    def any_diverged(self) -> bool:
        return bool(self.diverged.any())


def measure(actual: np.typing.ArrayLike, expected: AnyExpectation) -> dict[str, np.ndarray]:
    """Statistics of ``actual`` (S, ...) against an ``Expectation``: a dict of per-step arrays.

    NaN or Inf in ``actual`` where the truth is finite always fails.
    """
    S, n = expected.shape
    a = np.asarray(actual).reshape(S, n)
    if isinstance(expected, OuterExpectation):
        from lstm_compare.measuring import kernels

        if n and kernels.enabled(a):
            return _stats(*kernels.outer_measure(a, expected.a, expected.b, expected.tolerance), expected)
    return _measure_formed(a, expected.truth, expected)


def _measure_formed(a: np.ndarray, truth: np.ndarray, expected: AnyExpectation) -> dict[str, np.ndarray]:
    S, n = expected.shape
    rows = np.arange(S)
    if a.dtype == np.float64:
        err = np.subtract(a, truth)  # (S, n)
    else:  # cast first: NumPy's mixed-dtype subtract takes a slow buffered path
        err = a.astype(np.float64)
        err -= truth
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
    return _stats(max_abs, worst, a[rows, worst].astype(np.float64), truth[rows, worst], n_mismatch, expected)


def _stats(max_abs: np.ndarray, worst: np.ndarray, actual_at: np.ndarray, expected_at: np.ndarray,
           n_mismatch: np.ndarray, expected: AnyExpectation) -> dict[str, np.ndarray]:
    """The per-step statistics ``measure`` returns, from the worst element of each step and the mismatch count."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(expected.scale > 0, max_abs / expected.scale, np.where(max_abs > 0, np.inf, 0.0))
    return dict(max_abs_err=max_abs, max_rel_err=rel, worst_index=worst, actual=actual_at, expected=expected_at,
                n_mismatch=n_mismatch, tolerance=expected.tolerance, noise_floor=expected.noise_floor,
                diverged=n_mismatch > 0)


def tensor_diff(where: Where, shape: Sequence[int], steps: Sequence[int] | np.ndarray,
                stats: Sequence[dict[str, np.ndarray]]) -> TensorDiff:
    """A ``TensorDiff`` of the tensor at ``where`` from per-step ``measure`` dicts."""
    merged: dict[str, Any] = {key: np.concatenate([s[key] for s in stats]) for key in stats[0]}
    return TensorDiff(where, gate_of(where.tensor), shape=tuple(shape), steps=np.asarray(steps),
                      n_total=int(np.prod(shape)), **merged)
