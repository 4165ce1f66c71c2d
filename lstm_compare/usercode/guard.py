"""Calling the user's code safely: import its file, give it copies, bound its time, undo what it changes in the
process, turn what it raises into findings, and snapshot what it returns before anything is compared.

``call`` is the one door to the user's functions.  Each call gets its own writable copies of every argument, the
parameters included (copying them afresh was measured cheaper than keeping one private copy and checking it
against the originals after each call: at T=1000, H=256 float32 about 35 us a call, against 100 or more), runs
under a time limit (``time_limit``; SIGALRM, so in the main thread only), and afterwards finds the working
directory, NumPy's error handling, ``sys.stdout``/``sys.stderr`` and the SIGINT handler as they were before.
"""

import _signal  # type: ignore[import-not-found]  # signal.getsignal's C function (see _PROCESS_STATE)
import contextlib
import contextvars
import copy
import importlib.util
import math
import numbers
import os
import signal
import sys
import threading
import traceback
from os import PathLike
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised, UsageError

if TYPE_CHECKING:
    from lstm_compare.usercode.supervise import Monitor

DEFAULT_TIMEOUT = 60.0  # seconds one call of the user's code may take (lstm-compare --timeout, Config.timeout)

_timeout = contextvars.ContextVar("lstm_compare_timeout", default=DEFAULT_TIMEOUT)
# Set in a supervised child (lstm_compare.usercode.supervise): told where the user's code runs, for its parent.
MONITOR: "Monitor | None" = None


class TimedOut(BaseException):
    """Raised inside the user's code when its call runs past the time limit (not an Exception: a bare
    ``except Exception`` in the user's code does not swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Within this block each call of the user's code may take at most ``seconds``; None keeps the current limit."""
    if seconds is None:
        yield
        return
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not 0 < seconds < math.inf:
        raise UsageError(f"the time limit must be a positive number of seconds, not {seconds!r}.")
    token = _timeout.set(float(seconds))
    try:
        yield
    finally:
        _timeout.reset(token)


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
    sys.path.insert(0, str(path.resolve().parent))  # as `python my_lstm.py` would: its sibling modules import
    try:
        with _guarded(f"importing {path.name}"):
            spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001 - the user's module-level code may raise anything
        sys.modules.pop(module_name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        why = (f"its module-level code did not finish within {_timeout.get():g} s" if isinstance(error, TimedOut)
               else describe(error, str(path)))
        raise UsageError(f"{path} does not import: {why}.") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
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
    return file.is_relative_to(Path(__file__).resolve().parent.parent)  # inside the lstm_compare package


def private_copy(value: Any) -> Any:
    """A deep copy the user's code may modify in place, of the same type: arrays, dicts, lists and tuples
    quickly; namedtuples, dataclasses and other objects through ``copy.deepcopy``.  An object that cannot be
    copied (one holding a lock, say) is passed as it is: it is the user's own, the harness never reads it."""
    kind = type(value)
    if kind is np.ndarray:
        return value.copy()
    if kind is dict:  # arrays inline: a call's arguments hold a few dozen, copied on every call
        return {key: item.copy() if type(item) is np.ndarray else private_copy(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        items = [item.copy() if type(item) is np.ndarray else private_copy(item) for item in value]
        return items if kind is list else tuple(items)
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - e.g. TypeError: cannot pickle '_thread.lock' object
        return value


def read_only(array: np.typing.ArrayLike) -> np.ndarray:
    """A read-only copy of ``array``: what the engine's own parameters are, so that nothing writes to them."""
    array = np.array(array)
    array.flags.writeable = False
    return array


def call(impl: Any, function: str, args: tuple[Any, ...], phase: str, step: int | None) -> Any:
    """Call one of the user's functions, ``args = (params, ...)``, on private copies; its exceptions, and a call
    that runs past the time limit, become ``ImplementationRaised`` at ``phase``/``step``.  KeyboardInterrupt
    (Ctrl-C, or raised by the user's code) passes through."""
    args = private_copy(args)
    where = f"{phase} step {step}" if step is not None else f"{phase} (whole sequence)"
    try:
        with _guarded(f"{function} at {where}"):
            try:
                result = getattr(impl, function)(*args)
            except (KeyboardInterrupt, TimedOut):
                raise
            except BaseException as error:  # noqa: BLE001 - anything the user's code raises (SystemExit too)
                message = f"{function} raised {describe(error, impl.source)}."
            else:
                if not _Alarm.fired:
                    return result
                message = (f"{function} timed out after {_timeout.get():g} s (it caught the interruption and "
                           f"ran on).")
    except TimedOut:
        message = f"{function} timed out after {_timeout.get():g} s."
    raise ImplementationRaised(phase, step, message)


# What the user's code may change in the process, and how to put it back: (name, read, restore).  The SIGINT
# handler is read with _signal.getsignal, the C function under signal.getsignal (which also maps SIG_DFL and
# SIG_IGN to an enum, at ten times the cost: this runs twice per call of the user's code).
_PROCESS_STATE: tuple[tuple[str, Callable[[], Any], Callable[[Any], Any]], ...] = (
    ("working directory", os.getcwd, os.chdir),
    ("NumPy error handling", np.geterr, lambda saved: np.seterr(**saved)),
    ("sys.stdout", lambda: sys.stdout, lambda saved: setattr(sys, "stdout", saved)),
    ("sys.stderr", lambda: sys.stderr, lambda saved: setattr(sys, "stderr", saved)),
    ("SIGINT handler", lambda: _signal.getsignal(signal.SIGINT),
     lambda saved: saved is not None and signal.signal(signal.SIGINT, saved)),  # None: set outside Python
)


class _guarded:
    """Run the block as the user's code at ``location``: under the time limit, watched by a supervising parent
    (if any), and with the process state of ``_PROCESS_STATE`` restored afterwards.  (A class rather than a
    generator: it is entered once per call of the user's code, tens of thousands of times in a long run.)"""

    __slots__ = ("location", "saved", "alarm")

    def __init__(self, location: str) -> None:
        self.location = location

    def __enter__(self) -> None:
        self.saved = [read() for _, read, _ in _PROCESS_STATE]
        limit = _timeout.get()
        if MONITOR is not None:
            MONITOR.enter(self.location, limit)
        self.alarm = _arm(limit)

    def __exit__(self, *exc_info: object) -> None:
        try:
            _disarm(self.alarm)
        finally:
            if MONITOR is not None:
                MONITOR.leave()
            _restore(self.saved)


def _restore(saved: list[Any]) -> None:
    for (_, read, restore), value in zip(_PROCESS_STATE, saved):
        try:
            changed = read() != value
        except OSError:  # e.g. the user's code removed the directory it moved into
            changed = True
        if changed:
            with contextlib.suppress(OSError):  # the directory it left was removed: nowhere to go back to
                restore(value)


class _Alarm:
    """The state the SIGALRM handler reads: it raises TimedOut only while a call is running.  ``held``: a
    ``calls`` block keeps the handler installed between the calls of the user's code."""

    armed = False
    held = False
    fired = False  # the running call's limit passed (it may have caught TimedOut and returned anyway)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _Alarm.armed:
        _Alarm.armed = False
        _Alarm.fired = True
        raise TimedOut


def _alarm_usable() -> bool:
    """Whether SIGALRM can limit a call here: in the main thread (where signals arrive), and with no other
    real-time timer (pytest-timeout's, say) or handler from outside Python in place."""
    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getitimer(signal.ITIMER_REAL)[0] == 0 and signal.getsignal(signal.SIGALRM) is not None)


_HELD = object()  # _arm's token for a call inside a ``calls`` block


def _arm(seconds: float) -> Any:
    """Start raising TimedOut after ``seconds`` (where ``_alarm_usable``; elsewhere the call is not limited
    in-process, the command line's supervising parent still is); ``_disarm`` takes what this returns."""
    _Alarm.fired = False
    if _Alarm.held and threading.current_thread() is threading.main_thread():
        _Alarm.armed = True
        signal.setitimer(signal.ITIMER_REAL, seconds)
        return _HELD
    if not _alarm_usable():
        return None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _Alarm.armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return (previous,)


def _disarm(token: Any) -> None:
    """End the time limit ``_arm`` started: no timer left running, and the handler as it was before the call
    (ours again inside a ``calls`` block, whatever the user's code installed)."""
    if token is None:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    _Alarm.armed = False
    if token is _HELD:
        if _signal.getsignal(signal.SIGALRM) is not _on_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
    else:
        signal.signal(signal.SIGALRM, token[0])


@contextlib.contextmanager
def calls() -> Iterator[None]:
    """A block of many calls of the user's code (a comparison run): the SIGALRM handler is installed once for
    the block, not once per call.  Each call still arms its own timer and stops it when it returns, so between
    calls no timer runs; when the block ends the previous handler is back.  Where SIGALRM cannot be used
    (``_alarm_usable``), or inside another such block, it changes nothing."""
    if _Alarm.held or not _alarm_usable():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _Alarm.held = True
    try:
        yield
    finally:
        _Alarm.held = False
        signal.signal(signal.SIGALRM, previous)


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
