"""Who is told where the user's code runs: a supervising parent's shared record (``supervise.Monitor``), through
a small protocol, so that the guard and the supervisor know nothing else of each other."""

import contextlib
import contextvars
from typing import Iterator, Protocol


class CallObserver(Protocol):
    """Told where the user's code runs, and for how long it may: a supervising parent's shared record
    (``supervise.Monitor``)."""

    def enter(self, location: str, limit: float) -> None: ...

    def leave(self) -> None: ...


_observer: contextvars.ContextVar[CallObserver | None] = contextvars.ContextVar("lstm_compare_call_observer",
                                                                                 default=None)


@contextlib.contextmanager
def observed(observer: CallObserver) -> Iterator[None]:
    """Within the block, every call of the user's code is announced to ``observer`` before it runs, and after."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def watching() -> CallObserver | None:
    """The observer of the calls made here, if any."""
    return _observer.get()
