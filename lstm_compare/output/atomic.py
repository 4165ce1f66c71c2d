"""Writing files all or nothing: each to a hidden temporary beside its target, then moved into place; a signal
or an error on the way leaves the earlier files as they were and no temporary."""

import contextlib
import os
import re
import secrets
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator


from lstm_compare.errors import UsageError

if TYPE_CHECKING:
    from types import FrameType

    import pandas as pd


@dataclass(frozen=True)
class Output:
    """One file to write: ``write(path)`` writes all of it at ``path`` (a temporary beside ``target``)."""

    target: Path
    write: Callable[[Path], None]


def csv_output(frame: "pd.DataFrame | Callable[[], pd.DataFrame]", path: str | os.PathLike[str]) -> Output:
    """The ``Output`` that writes ``frame`` (a DataFrame, or a function that builds one when the file is written)
    as CSV, without index, with '\n' line ends."""
    build = frame if callable(frame) else lambda: frame
    return Output(Path(path), lambda temporary: build().to_csv(temporary, index=False, lineterminator="\n"))


TEMPORARY = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")  # .<name>.<pid>.<random>.tmp


def temporary_for(target: Path) -> Path:
    """A fresh hidden name beside ``target``: .<name>.<pid>.<random>.tmp (TEMPORARY)."""
    return target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> None:
    """Remove the temporaries of our naming pattern in ``folder`` whose writing process no longer exists."""
    if not Path(folder).is_dir():
        return
    for entry in Path(folder).iterdir():
        match = TEMPORARY.match(entry.name)
        if match and not _alive(int(match.group(1))) and entry.is_file():
            entry.unlink(missing_ok=True)


class _Terminated(BaseException):
    """SIGTERM arrived while files were being written."""


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``_Terminated`` (so that cleanup runs), then is delivered again."""
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or previous in (None, signal.SIG_IGN):
        yield  # signals reach the main thread only; SIG_IGN: whoever started us wants SIGTERM ignored
        return

    def handler(signum: int, frame: "FrameType | None") -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signal.SIGTERM, None)
        else:
            os.kill(os.getpid(), signal.SIGTERM)  # the default action: the process ends by SIGTERM
        raise SystemExit(128 + signal.SIGTERM) from None  # only when a handler of the caller's returned
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_targets(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse (UsageError, one sentence) a target that is a folder, or whose folder is a file."""
    for path in map(Path, paths):
        for folder in path.parents:
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"cannot write {path}: {folder} is a file, not a folder.")
        if path.is_dir():
            raise UsageError(f"cannot write {path}: it is a folder.")


def commit(outputs: Iterable[Output], remove: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Write every ``Output`` to a temporary, then move them all into place; then delete the files in ``remove``
    (reports an earlier run left that this one replaces with nothing).  All or nothing: a failure before the
    moves leaves every earlier file as it was, and no temporary.  Returns the targets.
    """
    outputs = list(outputs)
    check_targets(o.target for o in outputs)
    written = []
    with _sigterm_raises():
        try:
            for output in outputs:
                output.target.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temporaries(output.target.parent)
                # Named, and listed for the cleanup below, before it exists: a signal can arrive at any point.
                written.append(temporary_for(output.target))
                os.close(os.open(written[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode as umask allows
                output.write(written[-1])
            for output, temporary in zip(outputs, written):
                os.replace(temporary, output.target)
        except OSError as error:
            raise UsageError(f"cannot write {output.target}: {error.strerror or error}.") from None
        finally:
            for temporary in written:
                with contextlib.suppress(OSError):  # never created, in a folder that cannot be written
                    temporary.unlink(missing_ok=True)
    for path in remove:
        Path(path).unlink(missing_ok=True)
    return [o.target for o in outputs]


def write_csv_atomically(frame: "pd.DataFrame | Callable[[], pd.DataFrame]", path: str | os.PathLike[str]
                         ) -> Path:
    """Write ``frame`` to a temporary file beside ``path`` and move it into place in one step."""
    return commit([csv_output(frame, path)])[0]


def check_output_dir(out_dir: str | os.PathLike[str], names: Iterable[str] = ()) -> None:
    """Refuse, before any work, an output folder that cannot be one or cannot be written (UsageError, exit 2);
    ``names`` are files the run will write there, each of which must not be a folder."""
    path = Path(out_dir)
    for link in (path, *path.parents):
        if link.is_symlink() and not link.exists():
            raise UsageError(f"cannot write reports to {path}: {link} is a link that leads nowhere (to a missing "
                             f"file, or round in a loop).")
    check_targets([path / name for name in names] or [path / "report"])
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".lstm-compare-probe."):
            pass
    except OSError as error:
        reason = error.strerror or error
        raise UsageError(f"cannot write reports to {path}: {existing} is not writable ({reason}).") from None
