"""The global state of the user's module, one copy per run of its functions.

A file may keep state at module level instead of in its cache: a stack its forward pushes onto and its backward
pops, a dict keyed by step, a counter.  The harness runs the user's forward several times before any backward
(the chained run, then an isolated run per reference) and probes it between, which a single module-level stack
cannot survive.  So each run gets its own copy of that state, as the module had it after import: every call of a
run sees what the run's earlier calls left there, and nothing of the other runs.
"""

import collections
import contextlib
import types
from typing import Any, Iterator

import numpy as np

_CONTAINERS = (list, dict, set, collections.deque)


def mutable_globals(module: Any) -> dict[str, Any]:
    """The module's global values a run may change: its containers (lists, dicts, sets, deques) and plain values
    a ``global`` statement may rebind (numbers, strings, None, tuples); not its functions, classes, modules or
    arrays (data, shared by every run: a file that changes a module-level array in place changes it for all)."""
    return {name: value for name, value in vars(module).items()
            if not name.startswith("__") and not isinstance(value, (types.ModuleType, type, np.ndarray))
            and not callable(value)}


def fresh(value: Any) -> Any:
    """A copy of ``value`` whose containers are new (a list of arrays: a new list of the same arrays)."""
    if isinstance(value, list):
        return [fresh(item) for item in value]
    if isinstance(value, dict):
        return {key: fresh(item) for key, item in value.items()}
    if isinstance(value, set):
        return set(value)
    if isinstance(value, collections.deque):
        return collections.deque((fresh(item) for item in value), maxlen=value.maxlen)
    return value


class ModuleState:
    """One run's copy of a module's global state (``mutable_globals``), bound into the module while the run's calls
    run (``active``)."""

    def __init__(self, module: Any, baseline: dict[str, Any]) -> None:
        self.module = module
        self.values = {name: fresh(value) for name, value in baseline.items()}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        if not self.values:
            yield
            return
        namespace = vars(self.module)
        namespace.update(self.values)
        try:
            yield
        finally:  # what the calls rebound (a counter) or replaced is this run's from now on
            self.values = {name: namespace[name] for name in self.values if name in namespace}


@contextlib.contextmanager
def left_as_it_was(module: Any) -> Iterator[None]:
    """Within the block, calls that are the harness's own (probes) leave no trace in ``module``'s global state: its
    names are bound as before, and its lists, dicts and sets hold what they held (a file that keeps its forward's
    results on a module-level stack for its backward still finds one entry per step)."""
    names = dict(vars(module))
    kept = {name: _contents(value) for name, value in names.items()
            if not name.startswith("__") and _contents(value) is not None}  # not __builtins__'s dict
    try:
        yield
    finally:
        namespace = vars(module)
        for name in set(namespace) - set(names):
            del namespace[name]
        namespace.update(names)
        for name, contents in kept.items():
            _put_back(names[name], contents)


def _contents(value: Any) -> Any:
    if isinstance(value, (list, collections.deque)):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return None


def _put_back(value: Any, contents: Any) -> None:
    if isinstance(value, list):
        value[:] = contents
        return
    refill = value.extend if isinstance(value, collections.deque) else value.update
    value.clear()
    refill(contents)
