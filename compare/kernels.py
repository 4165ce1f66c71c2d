"""Fused kernels (numba) for the largest measurement: each unbatched step's weight contributions, xh^T dk_pre.

NumPy measures such a contribution in several passes over parameter-sized arrays: it forms the reference's
outer product (float64 and run dtype), subtracts, takes absolute values, finds the maximum.  These kernels make
one pass each and never form an outer product: every element is recomputed from the two factors.  They are
compiled without fast-math, so each product and difference is rounded exactly as NumPy rounds it (no FMA
contraction, no reassociation), and the figures are the same bits as ``compare.measure``'s NumPy path, which a
test checks on random data with NaN, Inf, zeros and negative values.

Compiling costs one to two seconds of CPU, so it happens in a background thread (``prepare``) while the
references run (JAX's compile and torch's work mostly release the GIL), and only for problems large enough to
repay it (``worth_it``); until the kernels are ready, and wherever numba does not import, NumPy measures.  Both
give the same bits, so which one measured a step never shows.  A command-line run may keep the compiled code in
the per-user cache (``compare.caching``); the Python API and the tests never write it.
"""

import contextlib
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from compare.measure import OuterExpectation
    from references.records import Problem

# Worth compiling when the weight contributions to measure hold at least this many elements per reference
# (T * 4 (X+H) H + T H O).  On the 2-core machine NumPy spends about 2.4 s on 328M elements (T=1000 H=256 X=64
# float32) where the kernels spend about 0.5 s; compiling them costs about 1.5 s of CPU, which in the background
# still slows the rest (measured: even at 328M, 0.4 s slower at 213M).  So without a cache they start at
# MIN_ELEMENTS (at T=3000 H=512, 3.2G elements, NumPy's rate would cost about 20 s more).  The command line
# with its cache on compiles them from MIN_ELEMENTS_CACHED up: its first run pays as above, every later one
# reads them back (0.6 s less at 328M).
MIN_ELEMENTS = 500_000_000
MIN_ELEMENTS_CACHED = 30_000_000
_ACTIVE: ContextVar[bool] = ContextVar("lstm_compare_kernels", default=False)
_COMPILED: dict[str, Callable[..., Any]] = {}
_LOCAL = threading.local()
_READY: dict[str, threading.Event] = {}  # run dtype -> set once both kernels are compiled for it
_COMPILED_FOR: set[str] = set()
_LOCK = threading.Lock()
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def available() -> bool:
    """Whether numba imports here."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def worth_it(problem: "Problem") -> bool:
    """Whether this problem's weight contributions are large enough to repay compiling the kernels."""
    if problem.batched:
        return False  # a batch's contribution is a sum over the batch: formed by the references' own matmul
    from compare import caching

    elements = problem.steps * sum(v.size for k, v in problem.params.items() if k.startswith("W"))
    return elements >= (MIN_ELEMENTS if caching.numba_cache_dir() is None else MIN_ELEMENTS_CACHED)


def prepare(problem: "Problem") -> None:
    """Start compiling the kernels for ``problem``'s dtype in a background thread, if it is worth it."""
    if worth_it(problem):
        _start(np.dtype(problem.dtype))


def _start(dtype: np.dtype[Any]) -> threading.Event:
    with _LOCK:
        if dtype.name not in _READY:
            _READY[dtype.name] = threading.Event()
            threading.Thread(target=_compile_for, args=(dtype,), name="lstm-compare-kernels", daemon=True).start()
        return _READY[dtype.name]


def compile_now(dtype: np.typing.DTypeLike) -> bool:
    """Compile the kernels for ``dtype`` and wait for them; whether they are ready (False: numba is missing)."""
    event = _start(np.dtype(dtype))
    event.wait()
    return dtype_ready(np.dtype(dtype))


def dtype_ready(dtype: np.dtype[Any]) -> bool:
    """Whether both kernels are compiled for arrays of ``dtype``."""
    event = _READY.get(dtype.name)
    return event is not None and event.is_set() and dtype.name in _COMPILED_FOR


def _compile_for(dtype: np.dtype[Any]) -> None:
    """Compile both kernels for a run in ``dtype`` by calling them once on tiny arrays (the run's signatures)."""
    try:
        if not available():
            return
        a, b = np.ones((1, 2)), np.ones((1, 3))
        if dtype != np.float64:  # a float64 run has no noise floor to measure
            outer_noise(a, b, a.astype(dtype), b.astype(dtype))
        outer_measure(np.ones((1, 6), dtype=dtype), _tiny_expectation(a, b))
        _COMPILED_FOR.add(dtype.name)
    finally:
        _READY[dtype.name].set()


def _tiny_expectation(a: np.ndarray, b: np.ndarray) -> "OuterExpectation":
    from compare.measure import OuterExpectation

    return OuterExpectation(a, b, np.ones(1), np.zeros(1), np.ones(1))


@contextlib.contextmanager
def use(active: bool) -> Iterator[None]:
    """Within the block (this thread or task only), measure weight contributions with the kernels if ``active``."""
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def enabled(*arrays: np.ndarray) -> bool:
    """Whether the kernels measure these arrays (the implementation's, or a reference's in the run dtype): turned
    on by ``use``, and already compiled for their dtype (``prepare``); never a compilation in the caller's time."""
    dtype = arrays[0].dtype
    return _ACTIVE.get() and all(a.dtype == dtype for a in arrays) and dtype_ready(dtype)


# A float64 that is >= 0 or NaN orders as its bits read as an int64 (NaN above Inf): integer maxima vectorize,
# where a float maximum that must keep NumPy's NaN rules does not.
_INF_BITS = 0x7FF0000000000000


def _outer_noise_kernel(a: np.ndarray, b: np.ndarray, a_same: np.ndarray, b_same: np.ndarray, work: np.ndarray,
                        out: np.ndarray) -> None:  # (S, A), (S, C), (S, A), (S, C), (A*C,) scratch -> (S,)
    S, A = a.shape
    C = b.shape[1]
    n = A * C
    bits = work.view(np.int64)
    for s in range(S):
        for i in range(A):
            x, x_same, o = a[s, i], a_same[s, i], i * C
            for j in range(C):
                work[o + j] = abs(np.float64(x_same * b_same[s, j]) - x * b[s, j])
        top = 0
        for m in range(n):
            v = bits[m]
            top = v if v > top else top
        k = 0
        if top > _INF_BITS:  # a NaN: NumPy's argmax finds the first NaN, whatever its payload
            while bits[k] <= _INF_BITS:
                k += 1
        else:
            while bits[k] != top:
                k += 1
        # NumPy's max(d.max(), -d.min()) of a row of zeros is -0.0 (its maximum returns the second of equals)
        out[s] = np.nan if top > _INF_BITS else (work[k] if top > 0 else -0.0)


def _outer_measure_kernel(actual: np.ndarray, a: np.ndarray, b: np.ndarray, tolerance: np.ndarray, work: np.ndarray,
                          max_abs: np.ndarray, worst: np.ndarray, actual_at: np.ndarray, expected_at: np.ndarray,
                          n_mismatch: np.ndarray) -> None:  # actual (S, A*C); a (S, A); b (S, C); outputs (S,)
    S, A = a.shape
    C = b.shape[1]
    n = A * C
    bits = work.view(np.int64)
    for s in range(S):
        for i in range(A):
            x, o = a[s, i], i * C
            for j in range(C):
                work[o + j] = abs(np.float64(actual[s, o + j]) - x * b[s, j])
        top = 0
        for m in range(n):
            v = bits[m]
            top = v if v > top else top
        k = 0
        if top > _INF_BITS:  # a NaN: NumPy's argmax finds the first NaN, whatever its payload
            while bits[k] <= _INF_BITS:
                k += 1
        else:
            while bits[k] != top:
                k += 1
        largest = np.inf if top > _INF_BITS else work[k]
        count = 0
        allowed = tolerance[s]
        if largest > allowed:  # counting costs a pass: only where something fails
            for m in range(n):
                e = work[m]
                count += 1 if (e > allowed or e != e) else 0
        worst[s] = k
        max_abs[s] = largest
        actual_at[s] = np.float64(actual[s, k])
        expected_at[s] = a[s, k // C] * b[s, k % C]
        n_mismatch[s] = count


def _compiled(name: str) -> Callable[..., Any]:
    """The kernel ``name``, compiled on first use (into the per-user cache when a command-line run allows it)."""
    if name not in _COMPILED:
        import numba

        from compare import caching

        folder = caching.numba_cache_dir()
        if folder is not None:  # only in the lstm-compare program, with its caches on
            numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
        jit: Any = numba.njit(nogil=True, cache=folder is not None, error_model="numpy")
        kernel = {"noise": _outer_noise_kernel, "measure": _outer_measure_kernel}[name]
        _COMPILED[name] = jit(kernel)
    return _COMPILED[name]


def _c(array: np.ndarray) -> np.ndarray:
    """``array`` as the kernels were compiled for it: C-contiguous and writeable (a copy only where it is not)."""
    return array if array.flags.c_contiguous and array.flags.writeable else np.array(array, order="C")


def _scratch(n: int) -> np.ndarray:
    """A float64 work array of ``n`` elements, reused by this thread's calls (no allocation per step)."""
    work: np.ndarray | None = getattr(_LOCAL, "work", None)
    if work is None or work.shape[0] < n:
        work = _LOCAL.work = np.empty(n)
    return work[:n]


def outer_noise(a: np.ndarray, b: np.ndarray, a_same: np.ndarray, b_same: np.ndarray) -> np.ndarray:
    """``compare.measure.outer_noise`` in one pass."""
    out = np.empty(a.shape[0])
    work = _scratch(a.shape[1] * b.shape[1])
    _compiled("noise")(_c(a), _c(b), _c(a_same), _c(b_same), work, out)
    return out


def outer_measure(actual: np.ndarray, expected: "OuterExpectation") -> dict[str, np.ndarray]:
    """``compare.measure.measure`` of ``actual`` (S, A*C) against an outer product's factors, in one pass."""
    S = actual.shape[0]
    max_abs, actual_at, expected_at = np.empty(S), np.empty(S), np.empty(S)
    worst, n_mismatch = np.empty(S, dtype=np.intp), np.empty(S, dtype=np.intp)
    work = _scratch(actual.shape[1])
    _compiled("measure")(_c(actual), _c(expected.a), _c(expected.b), _c(expected.tolerance.astype(np.float64)),
                         work, max_abs, worst, actual_at, expected_at, n_mismatch)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(expected.scale > 0, max_abs / expected.scale, np.where(max_abs > 0, np.inf, 0.0))
    return dict(max_abs_err=max_abs, max_rel_err=rel, worst_index=worst, actual=actual_at, expected=expected_at,
                n_mismatch=n_mismatch, tolerance=expected.tolerance, noise_floor=expected.noise_floor,
                diverged=n_mismatch > 0)
