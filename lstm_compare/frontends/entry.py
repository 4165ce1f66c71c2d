"""The program's first lines (``lstm-compare`` and ``python -m lstm_compare``): a Ctrl-C that comes while the tool
is still importing its libraries is one line and exit 130, not a traceback of those imports.  The handler is set
as this module is imported, before anything else of the tool (only the program imports this module)."""

import os
import _signal  # type: ignore[import-not-found]  # signal's C half, loaded with the interpreter: no import time


def _interrupted(signum: int, frame: object) -> None:
    os.write(2, b"lstm-compare: interrupted.\n")
    os._exit(130)  # lstm_compare.errors.EXIT_INTERRUPTED, which is not imported yet


_signal.signal(_signal.SIGINT, _interrupted)  # until the tool's own handlers take over

from typing import NoReturn  # noqa: E402  (after the handler: everything imported from here on is covered)


def main() -> NoReturn:
    from lstm_compare.frontends.cli import main as run_program

    run_program()
