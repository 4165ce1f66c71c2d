"""What the user's code may change in the process, kept apart from the harness: after every call of the user's
code the harness finds the process as it left it, and the user's code finds its own changes again at its next call.

Two kinds of state:

- Settings (``SETTINGS``): the working directory, NumPy's error handling, ``sys.stdout``/``sys.stderr``, the
  SIGINT, SIGTERM and SIGHUP handlers, the recursion limit and the warning filters.  Read before each call and
  put back after it where the call changed them.
- Namespaces (``WATCHED``): the modules whose functions the harness and the libraries it runs on call, numpy's,
  ``builtins`` and ``math``.  A file that replaces ``np.count_nonzero`` or ``builtins.print`` keeps its
  replacement in its own calls, while the harness, pandas, torch and JAX run on the originals.  While a run is
  isolated (``isolated()``), each watched module notes any attribute set or deleted on it, so a call that
  changed none costs one check.

A fork in the user's code (``os.fork``) is stopped when its call returns in the child process (``os._exit(0)``):
the harness's work goes on only in the process that started it.
"""

import _signal  # type: ignore[import-not-found]  # signal.getsignal's C function: a tenth of its cost
import contextlib
import importlib
import os
import signal
import sys
import types
import warnings
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np


class Setting(NamedTuple):
    name: str
    read: Callable[[], Any]
    restore: Callable[[Any], Any]


def _handler(signum: int) -> Setting:
    return Setting(f"{signal.Signals(signum).name} handler", lambda: _signal.getsignal(signum),
                   lambda saved: saved is not None and signal.signal(signum, saved))  # None: set outside Python


SETTINGS: tuple[Setting, ...] = (
    Setting("working directory", os.getcwd, os.chdir),
    Setting("NumPy error handling", np.geterr, lambda saved: np.seterr(**saved)),
    Setting("sys.stdout", lambda: sys.stdout, lambda saved: setattr(sys, "stdout", saved)),
    Setting("sys.stderr", lambda: sys.stderr, lambda saved: setattr(sys, "stderr", saved)),
    *(_handler(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)),
    Setting("recursion limit", sys.getrecursionlimit, sys.setrecursionlimit),
    Setting("warning filters", lambda: list(warnings.filters), lambda saved: _refill_filters(saved)),
)

def _refill_filters(saved: list[Any]) -> None:
    """The warning filters back as they were, in the list object ``warnings`` and its C half both read."""
    warnings.filters[:] = saved  # type: ignore[index]  # a list, typed as a Sequence
    warnings._filters_mutated()  # type: ignore[attr-defined]  # what warnings.filterwarnings itself calls


WATCHED = ("numpy", "numpy.linalg", "numpy.random", "builtins", "math")
_MISSING = object()


class _Noting(types.ModuleType):
    """A watched module's class during an isolated run: setting or deleting an attribute marks it changed."""

    def __setattr__(self, name: str, value: Any) -> None:
        _changed.add(self.__name__)
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        _changed.add(self.__name__)
        super().__delattr__(name)


_changed: set[str] = set()  # watched modules given or losing an attribute since the last check


class Namespace:
    """One watched module: the harness's entries (``ours``, taken when isolation begins) and the entries the user's
    code replaced or deleted there (``theirs``), swapped in for its calls and out after them."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module, self.entries = module, vars(module)
        self.ours = dict(self.entries)
        self.theirs: dict[str, Any] = {}

    def for_user(self) -> None:
        for name, value in self.theirs.items():
            if value is _MISSING:
                self.entries.pop(name, None)
            else:
                self.entries[name] = value

    def for_harness(self) -> None:
        """Note which of the harness's entries the user's code replaced or deleted here, and put them back.  Names
        it added are left alone: the harness calls none of them, and a module's lazily imported submodules
        (``numpy.random``) appear that way."""
        entries, ours = self.entries, self.ours
        self.theirs = {name: entries.get(name, _MISSING) for name, value in ours.items()
                       if entries.get(name, _MISSING) is not value}
        for name in self.theirs:
            entries[name] = ours[name]


class StandardStreams:
    """Standard output and error kept writable for the harness: a file that closes ``sys.stdout`` or file descriptor
    1 (``os.close(1)``) finds them closed in its own calls only; the summary still reaches the terminal."""

    def __init__(self) -> None:
        self.private = {fd: _dup(fd) for fd in (1, 2)}  # copies of the descriptors, taken before any user call

    def reopen(self) -> None:
        for fd, private in self.private.items():
            if private is not None and not _open_fd(fd):
                os.dup2(private, fd)
        for name, fd in (("stdout", 1), ("stderr", 2)):
            stream = getattr(sys, name)
            if getattr(stream, "closed", False):
                setattr(sys, name, open(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None)))

    def close(self) -> None:
        for private in self.private.values():
            if private is not None:
                os.close(private)


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:  # not open in this process
        return None


def _open_fd(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Isolation:
    """The state of one isolated run (``isolated()``): the watched namespaces and the process that owns the run."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.namespaces = {name: Namespace(importlib.import_module(name)) for name in WATCHED}
        self.standard = StandardStreams()

    def before_call(self) -> list[Any]:
        """Read the settings, and give the user's code its own namespace entries; what ``after_call`` takes."""
        for namespace in self.namespaces.values():
            if namespace.theirs:
                namespace.for_user()
        return [setting.read() for setting in SETTINGS]

    def after_call(self, saved: list[Any]) -> None:
        """Back to the harness's state: a forked child of the user's code ends here."""
        if os.getpid() != self.pid:
            os._exit(0)
        if _changed or any(namespace.theirs for namespace in self.namespaces.values()):
            _changed.clear()
            for namespace in self.namespaces.values():
                namespace.for_harness()
        restore(saved)
        self.standard.reopen()


def restore(saved: list[Any]) -> None:
    """Put back each setting of ``SETTINGS`` that differs from ``saved``."""
    for setting, value in zip(SETTINGS, saved):
        try:
            changed = setting.read() != value
        except (OSError, ValueError):  # e.g. the user's code removed the directory it moved into
            changed = True
        if changed:
            with contextlib.suppress(OSError, ValueError):  # the directory it left was removed: nowhere to go
                setting.restore(value)


_current: list[Isolation] = []  # the isolated run in progress in this process, if any (runs nest: the outer one)


def current() -> Isolation | None:
    return _current[0] if _current else None


@contextlib.contextmanager
def isolated() -> Iterator[Isolation]:
    """A run of the harness over the user's code: the watched modules note changes until it ends, when their
    classes and the harness's entries are back as they were."""
    if _current:
        yield _current[0]
        return
    isolation = Isolation()
    classes = {name: type(ns.module) for name, ns in isolation.namespaces.items()}
    for namespace in isolation.namespaces.values():
        if type(namespace.module) is types.ModuleType:
            namespace.module.__class__ = _Noting
    _current.append(isolation)
    try:
        yield isolation
    finally:
        _current.clear()
        _changed.clear()
        isolation.standard.close()
        for name, namespace in isolation.namespaces.items():
            namespace.for_harness()
            namespace.module.__class__ = classes[name]
