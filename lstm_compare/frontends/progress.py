"""Progress on standard error for work that takes a while: shown only on a terminal, only once the work has run
``DELAY`` seconds, and gone when it ends, so that standard output and the CSVs never hold it."""

import contextlib
import sys
import threading
from typing import Callable, Iterator

DELAY = 2.0  # seconds of work before a progress display appears (a quick run shows none)

# (label, done, total): what a long task reports; total 0 means 'not counted' (a spinner and the elapsed time)
Update = Callable[[str, int, int], None]


@contextlib.contextmanager
def progress(label: str, delay: float = DELAY, force: bool = False) -> Iterator[Update]:
    """A rich progress bar on stderr, shown from ``delay`` seconds on when stderr is a terminal (or ``force``);
    yields ``update(label, done, total)``.  The display never redirects stdout or stderr."""
    stream = sys.stderr
    if not (force or stream.isatty()):
        yield lambda label, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(file=stream, force_terminal=force or None),
                   transient=True, redirect_stdout=False, redirect_stderr=False)
    task = bar.add_task(label, total=None)
    lock = threading.Lock()
    state = {"started": False, "ended": False}

    def start() -> None:
        with lock:
            if not state["ended"]:
                bar.start()
                state["started"] = True

    def update(text: str, done: int, total: int) -> None:
        bar.update(task, description=text, completed=done, total=total or None)

    timer = threading.Timer(delay, start)
    timer.daemon = True
    timer.start()
    try:
        yield update
    finally:
        timer.cancel()
        with lock:
            state["ended"] = True
            if state["started"]:
                bar.stop()
