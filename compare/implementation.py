"""Load the implementation under test (a seed-convention file or module): its functions and cache fields."""

import inspect
import types
from dataclasses import dataclass


from compare.errors import UsageError
from compare.guard import import_file

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
        module, name = import_file(source), str(source)
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
