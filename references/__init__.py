"""PyTorch and JAX equivalents of the seed-convention LSTM, loaded with identical weights.

Each reference module has the same small interface: ``NAME`` and ``trace(problem) -> Trace``, taking and
returning plain NumPy records (``references.records``).  Frameworks are imported only when asked for, so a
missing one is reported in one line while the other still works.
"""

import importlib

from references.records import BACKWARD_TENSORS, FORWARD_TENSORS, Problem, Totals, Trace

MODULES = {"torch": "references.torch_lstm", "jax": "references.jax_lstm"}
REFERENCES = ("torch", "jax")  # the default set; MODULES may hold more that are asked for by name


class ReferenceUnavailable(RuntimeError):
    """A reference framework is not installed or fails to import."""


def load(name):
    """The reference module called ``name`` ('torch' or 'jax')."""
    if name not in MODULES:
        raise ReferenceUnavailable(f"unknown reference {name!r}: choose from {', '.join(MODULES)}")
    try:
        return importlib.import_module(MODULES[name])
    except ImportError as error:
        raise ReferenceUnavailable(f"reference {name!r} is unavailable: {error}") from None


def available():
    """Names of the references whose framework imports here."""
    names = []
    for name in MODULES:
        try:
            load(name)
        except ReferenceUnavailable:
            continue
        names.append(name)
    return names


__all__ = ["BACKWARD_TENSORS", "FORWARD_TENSORS", "Problem", "REFERENCES", "ReferenceUnavailable", "Totals",
           "Trace", "available", "load"]
