"""One-line notes a report carries beside its measurements."""

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    pass


def precision_note(name: str, dtype: np.dtype[Any], returned: Sequence[Mapping[str, Any]]) -> list[str]:
    """A sentence when the code returns another float precision than the run's: float64 in a float32 run (its
    float32 rounding is not tested), float32 in a float64 run (its errors are float32 rounding, not a bug)."""
    other = {np.dtype(np.float32): np.float64, np.dtype(np.float64): np.float32}.get(np.dtype(dtype))
    if other is None:
        return []
    found = sorted({tensor for values in returned for tensor, value in values.items()
                    if isinstance(value, np.ndarray) and value.dtype == other})
    if not found:
        return []
    names = f"{', '.join(found[:4])}{', ...' if len(found) > 4 else ''}"
    if other == np.float64:
        return [f"{name} computes in float64 on float32 inputs ({names} come back float64), so its float32 rounding "
                f"is not what this run measures."]
    return [f"{name} computes in float32 on float64 inputs ({names} come back float32), so differences of float32 "
            f"rounding (about 1e-7) are its precision, not a wrong formula: --dtype float32 compares it as such."]
