"""Fused kernels (numba) for the largest measurement: each unbatched step's weight contributions, xh^T dk_pre.

NumPy measures such a contribution in several passes over parameter-sized arrays: it forms the reference's outer product
(float64 and run dtype), subtracts, takes absolute values, finds the maximum.  These kernels make one pass each and
never form an outer product: every element is recomputed from the two factors.  They are compiled without fast-math, so
each product and difference is rounded exactly as NumPy rounds it (no FMA contraction, no reassociation), and the
figures are the same bits as ``lstm_compare.measuring.measure``'s NumPy path, which a test checks on random data with
NaN, Inf, zeros and negative values.

Compiling costs about a second of CPU, and holds the GIL, so it happens in a separate process (``prepare``: ``python -m
lstm_compare.measuring.kernels FOLDER DTYPE``) while the references run, and only for problems large enough to repay it
(``worth_it``).  That process leaves the compiled code in a folder (numba's cache), and the run reads it back (about 0.4
s, numba's import included) at its first measurement after the process has finished: a temporary folder of this run
only, removed once read, or the per-user cache of a command-line run (``lstm_compare.caching``), which a later run then
reuses.  Until the kernels are ready, and wherever numba does not import, NumPy measures.  Both give the same bits, so
which one measured a step never shows.  The Python API and the tests never write the per-user cache.
"""

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem

# Worth using when the weight contributions to measure hold at least this many elements per reference
# (T * 4 (X+H) H + T H O): below it, reading the compiled kernels back costs more than they save (bench/README.md).
MIN_ELEMENTS = 100_000_000
_ACTIVE: ContextVar[bool] = ContextVar("lstm_compare_kernels", default=False)
_LOCAL = threading.local()
_KERNELS: dict[str, dict[str, Callable[..., Any]]] = {}  # run dtype (its char) -> kernel name -> compiled kernel
_TEMPORARY_PREFIX = "lstm-compare-kernels-"  # + the run's pid + "-": a folder of one run's compiled kernels


@dataclass
class _Build:
    """The kernels for one run dtype, compiled by a separate process into ``folder``."""

    process: "subprocess.Popen[bytes]"
    folder: Path
    temporary: bool  # this run's own folder (removed once read); False: the per-user cache


_POPEN = subprocess.Popen  # as imported: the file under test may replace subprocess.Popen later
_BUILDS: dict[str, _Build] = {}  # run dtype (its char) -> its build, while it runs or until it is read back


# numba's settings come from its environment variables: those of this process as it started, not ones a file
# under test set (NUMBA_DISABLE_JIT=1 would make the kernels plain Python, a thousand times slower).
_NUMBA_ENVIRONMENT = {key: value for key, value in os.environ.items() if key.startswith("NUMBA_")}


def _environment() -> dict[str, str]:
    """This process's environment with numba's variables as they were when it started."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}, **_NUMBA_ENVIRONMENT}


@contextlib.contextmanager
def _numba_environment() -> Iterator[None]:
    """Within the block, numba's variables as this process started with them; the others' values after."""
    theirs = {key: value for key, value in os.environ.items() if key.startswith("NUMBA_")}
    for key in theirs:
        del os.environ[key]
    os.environ.update(_NUMBA_ENVIRONMENT)
    try:
        yield
    finally:
        for key in _NUMBA_ENVIRONMENT:
            os.environ.pop(key, None)
        os.environ.update(theirs)


def available() -> bool:
    """Whether numba imports here, and compiles (not turned off by NUMBA_DISABLE_JIT when this process started)."""
    try:
        with _numba_environment():
            import numba
    except ImportError:
        return False
    return not getattr(numba.config, "DISABLE_JIT", False)


def worth_it(problem: "Problem") -> bool:
    """Whether this problem's weight contributions are large enough to repay the kernels."""
    if problem.batched:
        return False  # a batch's contribution is a sum over the batch: formed by the references' own matmul
    elements = problem.steps * sum(v.size for k, v in problem.params.items() if k.startswith("W"))
    return elements >= MIN_ELEMENTS


def prepare(problem: "Problem") -> None:
    """Start compiling the kernels for ``problem``'s dtype in a separate process, if it is worth it (and they are
    neither ready nor being compiled)."""
    dtype = np.dtype(problem.dtype)
    if worth_it(problem) and dtype.char not in _KERNELS and dtype.char not in _BUILDS:
        build = _spawn(dtype)
        if build is not None:
            _BUILDS[dtype.char] = build


def _spawn(dtype: np.dtype[Any]) -> _Build | None:
    from lstm_compare import caching

    cached = caching.numba_cache_dir()
    if cached is None:
        _remove_stale_temporaries()
    folder = cached or Path(tempfile.mkdtemp(prefix=f"{_TEMPORARY_PREFIX}{os.getpid()}-"))
    root = str(Path(__file__).resolve().parents[2])  # the folder holding lstm_compare/, whatever the working directory
    path = os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))
    try:
        process = _POPEN([sys.executable, "-m", "lstm_compare.measuring.kernels", str(folder), dtype.name],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**_environment(), "PYTHONPATH": path})
    except OSError:  # no interpreter to start (an embedded Python, say): NumPy measures
        if cached is None:
            shutil.rmtree(folder, ignore_errors=True)
        return None
    return _Build(process, folder, temporary=cached is None)


def _remove_stale_temporaries() -> None:
    """Remove the temporary kernel folders of runs that ended without removing theirs (killed, say)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_TEMPORARY_PREFIX}*-*"):
        pid = folder.name[len(_TEMPORARY_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def compile_now(dtype: np.typing.DTypeLike) -> bool:
    """Compile the kernels for ``dtype`` in this process (no cache) and wait; whether they are ready (False:
    numba is missing)."""
    key = np.dtype(dtype).char
    if key not in _KERNELS and available():
        _KERNELS[key] = _load(np.dtype(dtype), None)
    return key in _KERNELS


def dtype_ready(dtype: np.dtype[Any]) -> bool:
    """Whether the kernels for arrays of ``dtype`` are ready: compiled here, or read back now from a build that
    has finished (a build that failed is given up: NumPy measures)."""
    if dtype.char in _KERNELS:
        return True
    build = _BUILDS.get(dtype.char)
    if build is None or build.process.poll() is None:
        return False
    try:
        if build.process.returncode == 0:
            _KERNELS[dtype.char] = _load(dtype, build.folder)
    except Exception:  # noqa: BLE001 - numba not importing here, or not reading its cache back: NumPy measures
        pass
    finally:
        _discard(dtype.char)
    return dtype.char in _KERNELS


def _discard(key: str) -> None:
    """Forget the build for the dtype whose char is ``key``: a temporary folder is removed, its process stopped
    if it still runs (a build into the per-user cache is left to finish: the next run reads it)."""
    build = _BUILDS.pop(key)
    if build.temporary:
        if build.process.poll() is None:
            build.process.kill()
            build.process.wait()
        shutil.rmtree(build.folder, ignore_errors=True)


def _load(dtype: np.dtype[Any], folder: Path | None) -> dict[str, Callable[..., Any]]:
    """Both kernels for a run in ``dtype``, compiled (or read back from ``folder``, numba's cache) by calling them
    once on tiny arrays of the run's signatures."""
    if not available():
        raise ImportError("numba cannot compile here")
    with _numba_environment():
        kernels = {name: _jit(kernel, folder) for name, kernel in (("noise", _outer_noise_kernel),
                                                                   ("measure", _outer_measure_kernel))}
    a, b = np.ones((1, 2)), np.ones((1, 3))
    work, out = np.empty(6), np.empty(1)
    if dtype != np.float64:  # a float64 run has no noise floor to measure
        kernels["noise"](a, b, a.astype(dtype), b.astype(dtype), work, out)
    outputs = [np.empty(1), np.empty(1, dtype=np.intp), np.empty(1), np.empty(1), np.empty(1, dtype=np.intp)]
    kernels["measure"](np.ones((1, 6), dtype=dtype), a, b, np.ones(1), work, *outputs)
    return kernels


@functools.cache
def _register_helpers() -> None:
    """Make ``_first_largest`` callable from the kernels (once per process; it stays a Python function too)."""
    from numba.extending import register_jitable

    register_jitable(_first_largest)


def _jit(kernel: Callable[..., Any], folder: Path | None) -> Callable[..., Any]:
    """``kernel`` compiled by numba without fast-math; with ``folder``, cached there.  (numba's cache folder is a
    process-wide setting that the dispatcher reads when it is made: set for that moment only, then put back.)"""
    import numba

    _register_helpers()
    jit: Any = numba.njit(nogil=True, cache=folder is not None, error_model="numpy")
    if folder is None:
        return jit(kernel)
    previous = numba.config.CACHE_DIR  # type: ignore[attr-defined]
    numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    try:
        return jit(kernel)
    finally:
        numba.config.CACHE_DIR = previous  # type: ignore[attr-defined]


@contextlib.contextmanager
def use(active: bool) -> Iterator[None]:
    """Within the block (this thread or task only), measure weight contributions with the kernels if ``active``;
    when it ends, builds not read back are forgotten (``_discard``)."""
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        for key in list(_BUILDS):  # the kernels are read back during the measurement, or not at all
            _discard(key)


def enabled(*arrays: np.ndarray) -> bool:
    """Whether the kernels measure these arrays (the implementation's, or a reference's in the run dtype): turned
    on by ``use``, and ready for their dtype (``prepare``); never a compilation in the caller's time."""
    dtype = arrays[0].dtype
    return _ACTIVE.get() and all(a.dtype == dtype for a in arrays) and dtype_ready(dtype)


# A float64 that is >= 0 or NaN orders as its bits read as an int64 (NaN above Inf): integer maxima vectorize,
# where a float maximum that must keep NumPy's NaN rules does not.
_INF_BITS = 0x7FF0000000000000


def _first_largest(bits: np.ndarray, n: int) -> tuple[int, int]:
    """(k, bits[k]): the first of the largest of ``bits[:n]``, a row of absolute differences >= 0 or NaN read as
    int64, where NumPy's argmax finds it: the first NaN if there is one, whatever its payload.  Compiled into the
    kernels that call it (``_jit`` registers it with numba)."""
    top = 0
    for m in range(n):
        v = bits[m]
        top = v if v > top else top
    k = 0
    if top > _INF_BITS:
        while bits[k] <= _INF_BITS:
            k += 1
    else:
        while bits[k] != top:
            k += 1
    return k, top


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
        k, top = _first_largest(bits, n)
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
        k, top = _first_largest(bits, n)
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
    """``lstm_compare.measuring.measure.outer_noise`` in one pass."""
    out = np.empty(a.shape[0])
    work = _scratch(a.shape[1] * b.shape[1])
    _KERNELS[a_same.dtype.char]["noise"](_c(a), _c(b), _c(a_same), _c(b_same), work, out)
    return out


def outer_measure(actual: np.ndarray, a: np.ndarray, b: np.ndarray, tolerance: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row s of ``actual`` (S, A*C) against the outer product a_s b_s^T ((S, A), (S, C)) with its allowed
    error ``tolerance`` (S,), in one pass: the largest |actual - expected| (Inf for a NaN), its flat index, the
    actual and expected values there, and how many elements exceed the tolerance or are NaN."""
    S = actual.shape[0]
    max_abs, actual_at, expected_at = np.empty(S), np.empty(S), np.empty(S)
    worst, n_mismatch = np.empty(S, dtype=np.intp), np.empty(S, dtype=np.intp)
    work = _scratch(actual.shape[1])
    kernel = _KERNELS[actual.dtype.char]["measure"]
    kernel(_c(actual), _c(a), _c(b), _c(tolerance.astype(np.float64)), work, max_abs, worst, actual_at, expected_at,
           n_mismatch)
    return max_abs, worst, actual_at, expected_at, n_mismatch


if __name__ == "__main__":  # python -m lstm_compare.measuring.kernels FOLDER DTYPE: compile both kernels into FOLDER
    from lstm_compare.measuring import kernels as _module  # the module's own functions (numba caches by file and name)

    _module._load(np.dtype(sys.argv[2]), Path(sys.argv[1]))
