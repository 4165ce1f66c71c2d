"""Fused kernels (numba) for the largest measurement: each unbatched step's weight contributions, xh^T dk_pre.

NumPy measures such a contribution in several passes over parameter-sized arrays: it forms the reference's
outer product (float64 and run dtype), subtracts, takes absolute values, finds the maximum.  These kernels make
one pass each and never form an outer product: every element is recomputed from the two factors.  They are
compiled without fast-math, so each product and difference is rounded exactly as NumPy rounds it (no FMA
contraction, no reassociation), and the figures are the same bits as ``compare.measure``'s NumPy path, which a
test checks on random data with NaN, Inf, zeros and negative values.

Compiling costs about a second, so the engine turns the kernels on only for problems large enough to repay it
(``worth_it``), and only where numba imports.  A command-line run may keep the compiled code in the per-user
cache (``compare.caching``); the Python API and the tests never write it.
"""

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from compare.measure import OuterExpectation
    from references.records import Problem

# Worth compiling when the weight contributions to measure hold at least this many elements per reference
# (T * 4 (X+H) H + T H O): measured on the 2-core machine, NumPy spends about 5 ns an element where the
# kernels spend about 1, against about a second of compiling.
MIN_ELEMENTS = 60_000_000
_ACTIVE: ContextVar[bool] = ContextVar("lstm_compare_kernels", default=False)
_COMPILED: dict[str, Callable[..., Any]] = {}
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
    elements = sum(v.size for k, v in problem.params.items() if k.startswith("W"))
    return problem.steps * elements >= MIN_ELEMENTS and available()


@contextlib.contextmanager
def use(active: bool) -> Iterator[None]:
    """Within the block (this thread or task only), measure weight contributions with the kernels if ``active``."""
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def enabled(*arrays: np.ndarray) -> bool:
    """Whether the kernels measure these arrays: turned on by ``use``, and every array float32 or float64."""
    return _ACTIVE.get() and all(a.dtype in KERNEL_DTYPES for a in arrays)


def _outer_noise_kernel(a: np.ndarray, b: np.ndarray, a_same: np.ndarray, b_same: np.ndarray,
                        out: np.ndarray) -> None:  # (S, A), (S, C), (S, A), (S, C) -> (S,)
    S, A = a.shape
    C = b.shape[1]
    for s in range(S):
        m = 0.0
        nan = False
        for i in range(A):
            x, x_same = a[s, i], a_same[s, i]
            for j in range(C):
                d = abs(np.float64(x_same * b_same[s, j]) - x * b[s, j])
                if d > m:
                    m = d
                elif d != d:
                    nan = True
        # NumPy's max(d.max(), -d.min()) of a row of zeros is -0.0 (its maximum returns the second of equals)
        out[s] = np.nan if nan else (m if m > 0.0 else -0.0)


def _outer_measure_kernel(actual: np.ndarray, a: np.ndarray, b: np.ndarray, tolerance: np.ndarray,
                          max_abs: np.ndarray, worst: np.ndarray, actual_at: np.ndarray, expected_at: np.ndarray,
                          n_mismatch: np.ndarray) -> None:  # actual (S, A*C); a (S, A); b (S, C); outputs (S,)
    S, A = a.shape
    C = b.shape[1]
    for s in range(S):
        best = -1.0
        at = 0
        nan_at = -1
        count = 0
        allowed = tolerance[s]
        for i in range(A):
            x = a[s, i]
            for j in range(C):
                e = abs(np.float64(actual[s, i * C + j]) - x * b[s, j])
                if e > best:
                    best = e
                    at = i * C + j
                elif e != e:
                    count += 1
                    if nan_at < 0:
                        nan_at = i * C + j
                if e > allowed:
                    count += 1
        if nan_at >= 0:  # NumPy's argmax finds the first NaN
            at = nan_at
            best = np.inf
        worst[s] = at
        max_abs[s] = best
        actual_at[s] = np.float64(actual[s, at])
        expected_at[s] = a[s, at // C] * b[s, at % C]
        n_mismatch[s] = count if best > allowed else 0


def _compiled(name: str) -> Callable[..., Any]:
    """The kernel ``name``, compiled on first use (into the per-user cache when a command-line run allows it)."""
    if name not in _COMPILED:
        import numba

        from compare import caching

        kernel = {"noise": _outer_noise_kernel, "measure": _outer_measure_kernel}[name]
        folder = caching.numba_cache_dir()
        if folder is not None:  # only in the lstm-compare program, with its caches on
            numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
        jit: Any = numba.njit(nogil=True, cache=folder is not None, error_model="numpy")
        _COMPILED[name] = jit(kernel)
    return _COMPILED[name]


def outer_noise(a: np.ndarray, b: np.ndarray, a_same: np.ndarray, b_same: np.ndarray) -> np.ndarray:
    """``compare.measure.outer_noise`` in one pass."""
    out = np.empty(a.shape[0])
    _compiled("noise")(np.ascontiguousarray(a), np.ascontiguousarray(b), np.ascontiguousarray(a_same),
                       np.ascontiguousarray(b_same), out)
    return out


def outer_measure(actual: np.ndarray, expected: "OuterExpectation") -> dict[str, np.ndarray]:
    """``compare.measure.measure`` of ``actual`` (S, A*C) against an outer product's factors, in one pass."""
    S = actual.shape[0]
    max_abs, actual_at, expected_at = np.empty(S), np.empty(S), np.empty(S)
    worst, n_mismatch = np.empty(S, dtype=np.intp), np.empty(S, dtype=np.intp)
    _compiled("measure")(np.ascontiguousarray(actual), np.ascontiguousarray(expected.a),
                         np.ascontiguousarray(expected.b), np.ascontiguousarray(expected.tolerance, dtype=np.float64),
                         max_abs, worst, actual_at, expected_at, n_mismatch)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(expected.scale > 0, max_abs / expected.scale, np.where(max_abs > 0, np.inf, 0.0))
    return dict(max_abs_err=max_abs, max_rel_err=rel, worst_index=worst, actual=actual_at, expected=expected_at,
                n_mismatch=n_mismatch, tolerance=expected.tolerance, noise_floor=expected.noise_floor,
                diverged=n_mismatch > 0)
