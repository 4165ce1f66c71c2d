"""Measure one tensor against its float64 truth, for one step or for many stacked steps at once."""

from dataclasses import dataclass

import numpy as np

from compare.tolerance import NOISE_FACTOR


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

    @property
    def any_diverged(self):
        return bool(self.diverged.any())


def measure(actual, truth, same_dtype_reference, tolerance):
    """Statistics of ``actual`` against ``truth`` over a leading step axis: a dict of per-step arrays.

    ``same_dtype_reference`` is the reference run in the implementation's dtype; its distance from ``truth``
    is the noise floor (zero in a float64 run).  NaN or Inf in ``actual`` where ``truth`` is finite always fails.
    """
    S = actual.shape[0]
    t = np.asarray(truth, dtype=np.float64).reshape(S, -1)  # (S, n)
    a = np.asarray(actual, dtype=np.float64).reshape(S, -1)
    r = np.asarray(same_dtype_reference, dtype=np.float64).reshape(S, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - t)
    err[~np.isfinite(err) & np.isfinite(t)] = np.inf
    worst = np.argmax(err, axis=1) if err.shape[1] else np.zeros(S, dtype=np.intp)
    max_abs = np.take_along_axis(err, worst[:, None], axis=1)[:, 0] if err.shape[1] else np.zeros(S)
    scale = np.abs(t).max(axis=1, initial=0.0)
    noise = np.abs(r - t).max(axis=1, initial=0.0)
    allowed = tolerance.atol + tolerance.rtol * scale + NOISE_FACTOR * noise
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(scale > 0, max_abs / scale, np.where(max_abs > 0, np.inf, 0.0))
    n_mismatch = (err > allowed[:, None]).sum(axis=1)
    rows = np.arange(S)
    return dict(max_abs_err=max_abs, max_rel_err=rel, worst_index=worst,
                actual=a[rows, worst] if err.shape[1] else np.zeros(S),
                expected=t[rows, worst] if err.shape[1] else np.zeros(S),
                n_mismatch=n_mismatch, tolerance=allowed, noise_floor=noise, diverged=n_mismatch > 0)


def tensor_diff(labels, shape, steps, stats):
    """A ``TensorDiff`` from its labels (reference, mode, phase, tensor, gate) and per-step ``measure`` dicts."""
    merged = {key: np.concatenate([s[key] for s in stats]) for key in stats[0]}
    n_total = int(np.prod(shape))
    return TensorDiff(*labels, shape=tuple(shape), steps=np.asarray(steps), n_total=n_total, **merged)
