"""Calling the user's code safely: import its file, give it copies, bound its time, undo what it changes in the
process, turn what it raises into findings, and snapshot what it returns before anything is compared.

``call`` is the one door to the user's functions.  Each call gets its own writable copies of every argument but
the parameters, which every call shares as arrays no one can write (``read_only``: their memory is an immutable
``bytes``, so not even ``flags.writeable = True`` unlocks them; a cache that keeps them costs nothing).  It runs
under a time limit (``timelimit``), and the process is kept apart from what it changes (``isolation``).
"""

import contextlib
import copy
import functools
import importlib.util
import sys
import traceback
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.lstm.where import Phase
from lstm_compare.usercode import isolation
from lstm_compare.usercode.watch import watching
from lstm_compare.usercode.timelimit import TimedOut, arm, disarm, fired, limit


def import_file(path: str | PathLike[str]) -> ModuleType:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist or is not a file.")
    module_name = f"lstm_compare_impl_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with _guarded(f"importing {path.name}", _folder(str(path))):
            spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001 - the user's module-level code may raise anything
        sys.modules.pop(module_name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        why = (f"its module-level code did not finish within {limit():g} s" if isinstance(error, TimedOut)
               else describe(error, str(path)))
        raise UsageError(f"{path} does not import: {why}.") from None
    return module


def describe(error: BaseException, source: str | None) -> str:
    """'ValueError: message (line 42 of my_lstm.py)' from the innermost frame in the user's file or a module
    beside it (``(line 125 of lstm_full.py)`` for a sibling it imports), on one line.

    An exception whose ``__str__`` itself fails is described by its type name alone.
    """
    name = type(error).__name__
    try:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        text = f"{name}: {message}" if message else name
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - the user's __str__ may raise anything, or run past the time limit
        text = f"{name} (its message cannot be shown: its __str__ raised)"
    if source:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if _users(Path(f.filename), Path(source))]
        if frames:
            text += f" (line {frames[-1].lineno} of {Path(frames[-1].filename).name})"
    return text


def _users(file: Path, source: Path) -> bool:
    """Whether ``file`` is the user's ``source`` or a module in its folder (not this project's own code)."""
    if file == source:
        return True
    try:
        folder = source.resolve().parent
        return file.resolve().parent.is_relative_to(folder) and not _ours(file.resolve())
    except OSError:
        return False


def _ours(file: Path) -> bool:
    return file.is_relative_to(Path(__file__).resolve().parents[1])  # inside lstm_compare/


def private_copy(value: Any) -> Any:
    """A deep copy the user's code may modify in place, of the same type: arrays, dicts, lists and tuples
    quickly; namedtuples, dataclasses and other objects through ``copy.deepcopy``.  An array no one can write
    (``read_only``) is passed as it is.  An object that cannot be copied (one holding a lock, say) is passed as it
    is: it is the user's own, the harness never reads it."""
    kind = type(value)
    if kind is np.ndarray:
        return value if is_immutable(value) else value.copy()
    if kind is dict:  # arrays inline: a call's arguments hold a few dozen, copied on every call
        return {key: _array_copy(item) if type(item) is np.ndarray else private_copy(item)
                for key, item in value.items()}
    if kind is list or kind is tuple:
        items = [_array_copy(item) if type(item) is np.ndarray else private_copy(item) for item in value]
        return items if kind is list else tuple(items)
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - e.g. TypeError: cannot pickle '_thread.lock' object
        return value


def _array_copy(array: np.ndarray) -> np.ndarray:
    return array if is_immutable(array) else array.copy()


def is_immutable(array: np.ndarray) -> bool:
    """Whether no one can write ``array``: its memory is a ``bytes`` object (``read_only``'s arrays)."""
    base: object = array.base
    while type(base) is np.ndarray:
        base = base.base
    return type(base) is bytes


def read_only(array: np.typing.ArrayLike) -> np.ndarray:
    """A copy of ``array`` that no one can write, not even after ``flags.writeable = True``: its memory is an
    immutable ``bytes``.  What the parameters are: every call of the user's code shares them, uncopied."""
    array = np.asarray(array)
    if is_immutable(array):
        return array
    contiguous = np.ascontiguousarray(array)
    return np.frombuffer(contiguous.tobytes(), dtype=contiguous.dtype).reshape(contiguous.shape)


@functools.lru_cache(maxsize=64)
def _folder(source: str | None) -> str | None:
    """The folder of the user's file, as its imports see it (None for a module without one); once per file."""
    return str(Path(source).resolve().parent) if source else None


def _read_only_hint(error: BaseException) -> str:
    """What to do when the user's code wrote to a parameter (numpy's ValueError for a read-only array)."""
    text = str(error) if isinstance(error, ValueError) else ""
    if "read-only" in text or "WRITEABLE" in text:
        return "; if that is a parameter: they are read-only (every call shares them), copy one before changing it"
    return ""


def call(impl: Any, function: str, args: tuple[Any, ...], phase: Phase, step: int | None) -> Any:
    """Call one of the user's functions, ``args = (params, ...)``, on private copies; its exceptions, and a call
    that runs past the time limit, become ``ImplementationRaised`` at ``phase``/``step``.  KeyboardInterrupt
    (Ctrl-C, or raised by the user's code) passes through."""
    args = private_copy(args)
    where = f"{phase} step {step}" if step is not None else f"{phase} (whole sequence)"
    try:
        with _guarded(f"{function} at {where}", _folder(impl.source)):
            try:
                result = getattr(impl, function)(*args)
            except (KeyboardInterrupt, TimedOut):
                raise
            except BaseException as error:  # noqa: BLE001 - anything the user's code raises (SystemExit too)
                message = f"{function} raised {describe(error, impl.source)}{_read_only_hint(error)}."
            else:
                if not fired():
                    return result
                message = (f"{function} timed out after {limit():g} s (it caught the interruption and "
                           f"ran on).")
    except TimedOut:
        message = f"{function} timed out after {limit():g} s."
    raise ImplementationRaised(phase, step, message)


class _guarded:
    """Run the block as the user's code at ``location``: under the time limit, watched by a supervising parent
    (if any), with the user's folder importable (``folder``), and with the process kept apart from what the
    code changes (``isolation``).  (A class rather than a generator: it is entered once per call of the user's
    code, tens of thousands of times in a long run.)"""

    __slots__ = ("location", "folder", "saved", "alarm", "observer", "isolation", "added")

    def __init__(self, location: str, folder: str | None = None) -> None:
        self.location, self.folder = location, folder

    def __enter__(self) -> None:
        self.isolation = isolation.current()
        self.saved = self.isolation.before_call() if self.isolation else [s.read() for s in isolation.SETTINGS]
        self.added = self.folder is not None and self.folder not in sys.path
        if self.added:
            sys.path.insert(0, self.folder)  # type: ignore[arg-type]  # as `python my_lstm.py` has it
        seconds = limit()
        self.observer = watching()
        if self.observer is not None:
            self.observer.enter(self.location, seconds)
        self.alarm = arm(seconds)

    def __exit__(self, *exc_info: object) -> None:
        try:
            disarm(self.alarm)
        finally:
            if self.observer is not None:
                self.observer.leave()
            if self.added:
                with contextlib.suppress(ValueError):  # the user's code removed it itself
                    sys.path.remove(self.folder)  # type: ignore[arg-type]
            if self.isolation is not None:
                self.isolation.after_call(self.saved)
            else:
                isolation.restore(self.saved)


def unpack(result: Any, count: int, what: str) -> tuple[Any, ...]:
    """The user's return value as a tuple of ``count`` items, or one clear UsageError (``result`` itself is not
    changed: a namedtuple cache stays one)."""
    if not isinstance(result, (tuple, list)) or len(result) != count:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        raise UsageError(f"{what} must return {count} values, but returned {got}.")
    return tuple(result)


def as_float_array(value: Any, expected_shape: Sequence[int], what: str) -> np.ndarray:
    """A snapshot of the user's array (a copy: code that reuses one buffer for every step cannot change what was
    recorded), checked for a floating dtype and the expected shape (UsageError otherwise)."""
    try:
        array = np.array(value, copy=True)
    except Exception:  # noqa: BLE001 - exotic objects that NumPy cannot read
        raise UsageError(f"{what} is not an array.") from None
    if array.dtype.kind != "f":  # np.issubdtype(dtype, np.floating), at a tenth of its cost
        raise UsageError(f"{what} has dtype {array.dtype}; a floating-point array is required.")
    if array.shape != tuple(expected_shape):
        raise UsageError(f"{what} has shape {array.shape}; expected {tuple(expected_shape)}.")
    return array
