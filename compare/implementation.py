"""Load the implementation under test (a seed-convention file or module) and call it safely."""

import copy
import importlib.util
import inspect
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compare.errors import ImplementationRaised, UsageError

# The seed's cache order, in the comparison's names (the seed calls the pre-activations f, i, g, o and the
# activated gates f_sigm, i_sigm, g_tanh, o_sigm).
SEED_CACHE_FIELDS = ("xh", "f_pre", "f", "i_pre", "i", "g_pre", "g", "o_pre", "o", "c", "c_tanh", "c_prev", "h")
REQUIRED = {"lstm": "lstm(params, inp, h_old, c_old)", "dlstm": "dlstm(params, dy, dh_next, dc_next, cache)"}


@dataclass(frozen=True)
class Implementation:
    """The functions of one seed-convention LSTM; the sequence functions are optional."""

    name: str
    lstm: object
    dlstm: object
    lstm_loss: object | None
    dlstm_loss: object | None
    cache_fields: tuple[str, ...]
    source: str | None  # the file the code lives in, to point at lines in its exceptions

    @property
    def has_sequence(self):
        return self.lstm_loss is not None and self.dlstm_loss is not None


def _import_file(path):
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
        spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001 - the user's module-level code may raise anything
        sys.modules.pop(module_name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise UsageError(f"{path} does not import: {_describe(error, str(path))}.") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


SIGNATURES = {"lstm": REQUIRED["lstm"], "dlstm": REQUIRED["dlstm"],
              "lstm_loss": "lstm_loss(params, h, c, inputs, targets)",
              "dlstm_loss": "dlstm_loss(params, inputs, targets, outputs, caches)"}


def load_implementation(source):
    """An ``Implementation`` from a path to a ``.py`` file, a module object, or an ``Implementation``."""
    if isinstance(source, Implementation):
        return source
    if isinstance(source, types.ModuleType):
        module, name = source, source.__name__
    else:
        module, name = _import_file(source), str(source)
    for function, signature in REQUIRED.items():
        if not callable(getattr(module, function, None)):
            raise UsageError(f"{name} has no function {signature}, which the seed convention requires.")
    optional = {f: getattr(module, f, None) for f in ("lstm_loss", "dlstm_loss")}
    optional = {f: fn if callable(fn) else None for f, fn in optional.items()}
    for function in ("lstm", "dlstm", *(f for f, fn in optional.items() if fn)):
        _check_arity(name, function, getattr(module, function))
    try:
        file = inspect.getsourcefile(module.lstm)
    except TypeError:
        file = None
    return Implementation(name, module.lstm, module.dlstm, optional["lstm_loss"], optional["dlstm_loss"],
                          _cache_fields(name, module), file)


def _check_arity(name, function, fn):
    """A function that cannot be called with the convention's arguments is a usage error, not a finding."""
    wanted = SIGNATURES[function]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C function: nothing to check
        return
    try:
        signature.bind(*range(wanted.count(",") + 1))
    except TypeError:
        raise UsageError(f"{name}: {function}{signature} cannot be called as {wanted}.") from None


def _cache_fields(name, module):
    fields = getattr(module, "CACHE_FIELDS", SEED_CACHE_FIELDS)
    if (not isinstance(fields, (tuple, list)) or not all(isinstance(f, str) for f in fields)
            or len(set(fields)) != len(fields)):
        raise UsageError(f"{name}: CACHE_FIELDS must be a tuple of distinct names (strings), one per cache entry.")
    return tuple(fields)


def _describe(error, source):
    """'ValueError: message (line 42 of my_lstm.py)' from the innermost frame in the user's file."""
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    if source:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == Path(source)]
        if frames:
            text += f" (line {frames[-1].lineno} of {Path(source).name})"
    return text


def private_copy(value):
    """A deep copy the user's code may modify in place."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {key: private_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(private_copy(item) for item in value)
    return copy.deepcopy(value)


def read_only(array):
    """A read-only copy of ``array``, to share with the user's code without copying on every call."""
    array = np.array(array)
    array.flags.writeable = False
    return array


def call(impl, function, args, phase, step):
    """Call one of the user's functions, ``args = (params, ...)``, on copies; its exceptions become findings.

    Every argument but the parameters is copied for each call.  The parameters (read-only arrays) are shared
    to save copying them at every step; code that writes to them in place is simply called again with a
    writable copy, so it too gets copies and nothing it does can reach the references or later steps.
    """
    params, rest = args[0], args[1:]
    shared = all(isinstance(v, np.ndarray) and not v.flags.writeable for v in params.values())
    try:
        try:
            return getattr(impl, function)(dict(params) if shared else private_copy(params), *private_copy(rest))
        except ValueError as error:
            if "read-only" not in str(error):
                raise
        return getattr(impl, function)(private_copy(params), *private_copy(rest))
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - anything the user's code raises (SystemExit too) is a finding
        raise ImplementationRaised(phase, step, f"{function} raised {_describe(error, impl.source)}.") from None


def unpack(result, count, what):
    """The user's return value as a tuple of ``count`` items, or one clear UsageError."""
    if not isinstance(result, (tuple, list)) or len(result) != count:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else type(result).__name__
        raise UsageError(f"{what} must return {count} values, but returned {got}.")
    return tuple(result)


def as_float_array(value, expected_shape, what):
    """The user's array, checked for a floating dtype and the expected shape (UsageError otherwise)."""
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - exotic objects that NumPy cannot read
        raise UsageError(f"{what} is not an array.") from None
    if not np.issubdtype(array.dtype, np.floating):
        raise UsageError(f"{what} has dtype {array.dtype}; a floating-point array is required.")
    if array.shape != tuple(expected_shape):
        raise UsageError(f"{what} has shape {array.shape}; expected {tuple(expected_shape)}.")
    return array
