"""Calling the user's code safely: import its file, give it copies, turn what it raises into findings, and
check what it returns before anything is compared."""

import copy
import importlib.util
import sys
import traceback
from pathlib import Path

import numpy as np

from compare.errors import ImplementationRaised, UsageError


def import_file(path):
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
        raise UsageError(f"{path} does not import: {describe(error, str(path))}.") from None
    finally:
        sys.path.remove(str(path.resolve().parent))
    return module


def describe(error, source):
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
    """Call one of the user's functions on copies of ``args``; its exceptions become findings.

    Every argument is copied for each call, except read-only arrays (and dicts of them: the parameters), which
    are shared to save copying them at every step; code that writes to them in place is simply called again
    with writable copies, so it too gets copies and nothing it does can reach the references or later steps.
    """
    try:
        try:
            return getattr(impl, function)(*(_shared(value) for value in args))
        except ValueError as error:
            if "read-only" not in str(error):
                raise
        return getattr(impl, function)(*private_copy(tuple(args)))
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - anything the user's code raises (SystemExit too) is a finding
        raise ImplementationRaised(phase, step, f"{function} raised {describe(error, impl.source)}.") from None


def _read_only(value):
    return isinstance(value, np.ndarray) and not value.flags.writeable


def _shared(value):
    """A read-only array (or a dict of them) as it is, anything else as a private copy."""
    if _read_only(value):
        return value
    if isinstance(value, dict) and value and all(_read_only(v) for v in value.values()):
        return dict(value)
    return private_copy(value)


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
