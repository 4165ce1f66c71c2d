"""Conventions: how people write a hand-written LSTM, each bound to the internal layout by one module.

``bind(source, convention="auto")`` loads a user's file (or takes a module) and returns the ``Binding`` of the
convention it follows: named with ``convention``, or detected from the names the file defines.
"""

import inspect
import types
from os import PathLike
from typing import Any, Callable, Mapping

from lstm_compare.usercode.conventions import coursera, cs231n, declared, karpathy, question
from lstm_compare.usercode.conventions.base import Binding, Source
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import import_file
from lstm_compare.usercode.loading import import_definitions

# name -> module with ``detect(module) -> reason | None`` and a ``Binding`` subclass; detection tries them in order
# (a file's own declaration first: it wins over the names the file happens to define).
CONVENTIONS = {"declared": declared, "question": question, "cs231n": cs231n, "coursera": coursera, "karpathy": karpathy}
CHOICES = ("auto", *CONVENTIONS)


def binding_class(module: types.ModuleType) -> type[Binding]:
    return next(value for value in vars(module).values()
                if isinstance(value, type) and issubclass(value, Binding) and value is not Binding
                and value.__module__ == module.__name__)


def detect(module: types.ModuleType) -> tuple[str, str] | tuple[None, None]:
    """(convention name, reason) for the first convention whose names the module defines, or (None, None)."""
    for name, convention in CONVENTIONS.items():
        reason = convention.detect(module)
        if reason:
            return name, reason
    return None, None


NAMESPACE = "your namespace"  # how a mapping or namespace of the user's functions is named in reports


def as_module(namespace: Mapping[str, Any] | types.SimpleNamespace) -> types.ModuleType:
    """A module holding the names of ``namespace`` (a notebook's ``globals()``, a dict, a SimpleNamespace), so that
    a notebook's own functions are compared without writing a file."""
    module = types.ModuleType(NAMESPACE)
    module.__dict__.update(namespace if isinstance(namespace, Mapping) else vars(namespace))
    return module


def load_module(source: "str | PathLike[str] | types.ModuleType | Mapping[str, Any] | types.SimpleNamespace"
                ) -> tuple[types.ModuleType, str, tuple[str, ...]]:
    """(module, display name, notes) from a path to a ``.py`` file, a module object, or a mapping or namespace
    of functions.

    A file whose module-level code fails is loaded with its definitions only (``lstm_compare.usercode.loading``), and a
    note says so; the original error stands when even that gives nothing to bind.
    """
    if isinstance(source, types.ModuleType):
        return source, source.__name__, ()
    if isinstance(source, (Mapping, types.SimpleNamespace)):
        return as_module(source), NAMESPACE, ()
    try:
        return import_file(source), str(source), ()
    except UsageError as error:
        loaded = import_definitions(source)
        if loaded is None:
            raise
        module, failed = loaded
        why = str(error).split(" does not import: ", 1)[-1].rstrip(".")
        skipped = f"; the definitions at {', '.join(failed)} failed too" if failed else ""
        note = f"running {source} as a whole failed ({why}), so only its definitions were loaded{skipped}."
        module.__lstm_compare_import_error__ = error  # type: ignore[attr-defined]  # read back by bind()
        return module, str(source), (note,)


def bind(source: Source, convention: str = "auto") -> Binding:
    """The ``Binding`` of ``source`` (a path, a module, or a ``Binding`` already made) under ``convention``."""
    if isinstance(source, Binding):
        return source
    if convention not in CHOICES:
        raise UsageError(f"unknown convention {convention!r}: choose from {', '.join(CHOICES)}.")
    module, name, notes = load_module(source)
    if convention == "auto":
        matches = [name for name, c in CONVENTIONS.items() if c.detect(module)]
        convention = matches[0] if matches else closest(module)
        if len(matches) > 1:
            notes = (*notes, f"{name} defines the names of several conventions ({', '.join(matches)}); "
                             f"{convention} was chosen: --convention names another.")
    try:
        file = inspect.getsourcefile(module)
    except TypeError:
        file = None
    try:
        binding = binding_class(CONVENTIONS[convention])(module, name, file)
    except UsageError:
        if hasattr(module, "__lstm_compare_import_error__"):  # definitions alone were not enough: the import is
            raise module.__lstm_compare_import_error__ from None
        raise
    binding.notes = notes
    return binding


def closest(module: types.ModuleType) -> str:
    """The convention whose function names the module defines most of (the question's on a tie): its binding
    then says exactly which function is missing."""
    defined: Callable[[types.ModuleType], int] = lambda c: sum(hasattr(module, n) for n in c.NAMES)  # noqa: E731
    return max(CONVENTIONS, key=lambda name: (defined(CONVENTIONS[name]), name == "question"))
