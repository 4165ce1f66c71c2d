"""Give the C heap's free pages back to the operating system, so that memory freed in one phase does not count
towards the process's peak in the next.

The references build many small per-step arrays (torch tensors, NumPy rows) and then a few large ones from them;
glibc keeps the freed small ones' pages, since they lie below live allocations, until ``malloc_trim`` returns
every wholly free page.  Elsewhere (macOS, musl) there is no such call and this does nothing.  Nothing else
changes: no allocator setting, no data.
"""

import ctypes
import sys
from functools import cache
from typing import Callable


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process already runs on
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


# Below this many bytes held by a phase, what it frees is not worth a walk over the heap (a few milliseconds).
WORTH_RELEASING = 64 << 20


def release_free_memory(held: int) -> None:
    """Return the C heap's wholly free pages to the operating system (glibc's ``malloc_trim(0)``), if it can and
    the phase that freed them held at least WORTH_RELEASING bytes (``held``)."""
    trim = _malloc_trim()
    if trim is not None and held >= WORTH_RELEASING:
        trim(0)
