"""When a tensor counts as diverged: a per-dtype tolerance plus the references' own rounding noise.

For each compared tensor (at one step) with float64 truth ``t`` (the reference run in float64), the
implementation's value ``a`` and the same reference run in the implementation's dtype ``r``:

    allowed = atol + rtol * max|t| + NOISE_FACTOR * max|r - t|
    diverged  <=>  some element has |a - t| > allowed, or a is NaN/Inf where t is finite.

``max|r - t|`` is the noise floor: what a correct implementation in that dtype is observed to drift from the
truth on exactly this tensor and step.  In a float64 run r is t, so the floor is zero and only the table acts.
"""

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

import numpy as np

# A user who accepts more error widens every allowance by this factor (Config.tolerance_factor, --tolerance-factor).
_FACTOR: ContextVar[float] = ContextVar("lstm_compare_tolerance_factor", default=1.0)


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # relative to the largest |truth| in the tensor at that step (norm-wise)
    atol: float  # absolute floor, for tensors that are (nearly) zero

    def allowed(self, scale: np.ndarray, noise_floor: np.ndarray) -> np.ndarray:
        """The largest |actual - truth| allowed per step, from max|truth| and the noise floor (the formula above)."""
        allowed = self.atol + self.rtol * scale + NOISE_FACTOR * noise_floor
        return allowed if _FACTOR.get() == 1.0 else _FACTOR.get() * allowed


# torch.testing.assert_close uses rtol 1.3e-6 / atol 1e-5 for float32 and 1e-7 / 1e-7 for float64.  Ours are
# norm-wise (scaled by the tensor's largest value), so rtol can be tight: float64 at 1e-9 still sits 10^7 ulps
# above rounding, yet flags a single gate computed in float32 precision (~6e-8 relative).  The float32 atol is
# 1e-6, not 1e-5, so that small but wrong gradients are not waved through; the noise floor covers drift.
TOLERANCES = {
    np.dtype(np.float64): Tolerance(rtol=1e-9, atol=1e-12),
    np.dtype(np.float32): Tolerance(rtol=1.3e-6, atol=1e-6),
}
NOISE_FACTOR = 10.0  # a correct implementation's rounding differs from a reference's by a small factor


def tolerance_for(dtype: np.typing.DTypeLike) -> Tolerance:
    return TOLERANCES[np.dtype(dtype)]


@contextlib.contextmanager
def widened(factor: float) -> Iterator[None]:
    """Within this block (a run) every allowance is ``factor`` times the formula's."""
    token = _FACTOR.set(float(factor))
    try:
        yield
    finally:
        _FACTOR.reset(token)


def reference_tolerance(module: ModuleType, dtype: np.typing.DTypeLike) -> Tolerance:
    """The dtype's tolerance, widened to the reference's own accuracy where it declares a coarser one.

    A reference module may define ``TOLERANCE`` with ``rtol`` and ``atol`` (finite differences do).
    """
    table = tolerance_for(dtype)
    own = getattr(module, "TOLERANCE", None)
    if own is None:
        return table
    return Tolerance(rtol=max(table.rtol, own.rtol), atol=max(table.atol, own.atol))
