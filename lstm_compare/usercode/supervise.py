"""Run a command in a child process that its parent watches, so that nothing the user's code does ends the tool.

The parent forks before torch or JAX is imported and then only waits.  Before each call of the user's code the
child writes where it is (``guard.call``'s location) and the call's deadline into an anonymous shared mapping.
When the child ends without finishing (``os._exit``, a crash, a signal), or stays in one call past its time
limit plus ``GRACE`` (stuck in compiled code, or swallowing ``timelimit.TimedOut``), the parent ends it if needed and
prints one line naming that location: exit 1, and no report is written, because the child never reached that
point.  The child leaves through ``os._exit`` once its work is done, so a thread the user's code started cannot
keep the tool alive.
"""

import mmap
import os
import select
import signal
import struct
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, NoReturn

from lstm_compare.usercode.watch import observed
from lstm_compare.errors import EXIT_DIVERGED, EXIT_INTERRUPTED

GRACE = 2.0  # seconds past a call's time limit before the parent stops a child that did not interrupt it itself
POLL = 0.25  # seconds between the parent's looks at the child when nothing happens
SAME_INTERRUPT = 0.5  # seconds within which a second SIGINT is the first one again (the terminal's and the parent's)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_HEADER = struct.Struct("=Bdd")  # state, deadline (time.monotonic, shared by both processes), limit in seconds
_SIZE = 4096
WORKING, IN_CALL, FINISHED = 0, 1, 2


class Monitor:
    """The shared record of where the child is: written by the child (``guard._guarded``), read by the parent."""

    def __init__(self) -> None:
        self.memory = mmap.mmap(-1, _SIZE)

    def enter(self, location: str, limit: float) -> None:
        text = location.encode("utf-8", "replace")[:_SIZE - _HEADER.size - 1] + b"\0"
        self.memory[_HEADER.size:_HEADER.size + len(text)] = text
        _HEADER.pack_into(self.memory, 0, IN_CALL, time.monotonic() + limit, limit)

    def leave(self) -> None:
        self.memory[0] = WORKING

    def finish(self) -> None:
        self.memory[0] = FINISHED

    def read(self) -> tuple[int, float, float, str]:
        """(state, deadline, limit, location of the last call of the user's code, '' before the first)."""
        state, deadline, limit = _HEADER.unpack_from(self.memory, 0)
        location = self.memory[_HEADER.size:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return state, deadline, limit, location


def can_fork() -> bool:
    """Whether forking is safe here: POSIX, one thread, and no framework (with threads of its own) imported yet."""
    return (hasattr(os, "fork") and threading.active_count() == 1
            and not any(name in sys.modules for name in ("torch", "jax", "jaxlib")))


def run(work: Callable[[], int]) -> NoReturn:
    """Exit the process with ``work()``'s exit code, ``work`` run in a watched child when that is possible."""
    if not can_fork():
        _leave(_attempt(work))
    monitor = Monitor()
    pid = os.fork()
    if pid == 0:
        interrupt = InterruptOnce()
        signal.signal(signal.SIGINT, interrupt)
        sys.unraisablehook = interrupt.unraisable(sys.unraisablehook)
        with observed(monitor):
            code = _attempt(work)
        monitor.finish()
        _leave(code)
    sys.exit(_watch(pid, monitor))


def _attempt(work: Callable[[], int]) -> int:
    """``work()``'s exit code, with SystemExit (argparse's --help and errors) turned into its code."""
    try:
        return work()
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1


def _leave(code: int) -> NoReturn:
    """Flush and end the process now, whatever threads the user's code left running."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said there
            pass
    os._exit(code)


class InterruptOnce:
    """The child's SIGINT handler: the first SIGINT is a KeyboardInterrupt (the tool says "interrupted" and leaves
    the reports as they were); a second one, or a first that a library swallowed (a KeyboardInterrupt raised in a
    garbage-collector callback is only printed, as "Exception ignored"), ends the child at once, quietly: its
    parent says the one line."""

    def __init__(self) -> None:
        self.raised: float | None = None  # when the first SIGINT came

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.raised is None:
            self.raised = time.monotonic()
            raise KeyboardInterrupt
        if time.monotonic() > self.raised + SAME_INTERRUPT:  # Ctrl-C pressed again, not its copy from the parent
            _leave(EXIT_INTERRUPTED)

    def unraisable(self, hook: Any) -> Callable[[Any], None]:
        """A ``sys.unraisablehook`` that ends the child for a swallowed KeyboardInterrupt and passes the rest on."""
        def handle(unraisable: Any) -> None:
            if isinstance(unraisable.exc_value, KeyboardInterrupt):
                _leave(EXIT_INTERRUPTED)
            hook(unraisable)

        return handle


def _watch(pid: int, monitor: Monitor) -> int:
    """Wait for the child; the exit code, after one line on stderr if it had to be stopped or ended abruptly."""
    received: list[tuple[int, float]] = []  # (signal, when)

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append((signum, time.monotonic()))
        _signal(pid, signum)

    previous: dict[int, Any] = {signum: signal.signal(signum, forward) for signum in FORWARDED}  # the handlers before
    try:
        status, stopped = _wait(pid, monitor, received)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    state, _, limit, location = monitor.read()
    if state == FINISHED and os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if received:
        signum = received[0][0]
        _say(f"interrupted ({signal.Signals(signum).name}).")
        return EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum
    if stopped:
        _say(f"{location} timed out after {limit:g} s and could not be interrupted (stuck in compiled code, or "
             f"catching every exception); stopped it, no reports written.")
        return EXIT_DIVERGED
    how = (f"killed by {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
           else f"exit status {os.WEXITSTATUS(status)}, as from os._exit")
    how += ", perhaps for lack of memory" if how.endswith("SIGKILL") else ""
    where = (f"inside {location}" if state == IN_CALL else f"outside your code, after {location}" if location
             else "before any of your code ran")
    _say(f"the run ended abruptly {where} ({how}); no reports written.")
    return EXIT_DIVERGED


def _wait(pid: int, monitor: Monitor, received: list[tuple[int, float]]) -> tuple[int, bool]:
    """(wait status, whether the parent stopped the child because a call ran past its deadline)."""
    try:
        ready = os.pidfd_open(pid)  # readable when the child ends: no waiting out a whole POLL
    except (AttributeError, OSError):
        ready = None
    stopped = False
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, stopped
            state, deadline, _, _ = monitor.read()
            now = time.monotonic()
            late = state == IN_CALL and now > deadline + GRACE
            if late or (received and now > received[0][1] + GRACE) or len(received) > 1:  # a second Ctrl-C: now
                stopped = stopped or late
                _signal(pid, signal.SIGKILL)
                return os.waitpid(pid, 0)[1], stopped
            if ready is not None:
                select.select([ready], [], [], POLL)
            else:
                time.sleep(POLL / 5)
    finally:
        if ready is not None:
            os.close(ready)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # it has just ended
        pass


def _say(sentence: str) -> None:
    print(f"lstm-compare: {sentence}", file=sys.stderr, flush=True)
