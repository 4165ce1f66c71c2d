"""The time limit on each call of the user's code: a SIGALRM that raises ``TimedOut`` inside it (in the main thread;
elsewhere only the command line's supervising parent limits a call)."""

import _signal  # type: ignore[import-not-found]  # signal.getsignal's C function: a tenth of its cost
import contextlib
import contextvars
import math
import numbers
import signal
import threading
from types import FrameType
from typing import Any, Iterator

from lstm_compare.errors import UsageError


DEFAULT_TIMEOUT = 60.0  # seconds one call of the user's code may take (lstm-compare --timeout, Config.timeout)


_timeout = contextvars.ContextVar("lstm_compare_timeout", default=DEFAULT_TIMEOUT)


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


_HELD = object()  # arm's token for a call inside a ``calls`` block


def arm(seconds: float) -> Any:
    """Start raising TimedOut after ``seconds`` (where ``_alarm_usable``; elsewhere the call is not limited
    in-process, the command line's supervising parent still is); ``disarm`` takes what this returns."""
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


def disarm(token: Any) -> None:
    """End the time limit ``arm`` started: no timer left running, and the handler as it was before the call
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


def limit() -> float:
    """The time limit in force here, in seconds."""
    return _timeout.get()


def fired() -> bool:
    """Whether the running (or last) call's limit passed: it may have caught ``TimedOut`` and returned anyway."""
    return _Alarm.fired
