"""PyTorch and JAX equivalents of an LSTM in the question's convention, loaded with identical weights, and a
finite-difference reference (``numeric``, NumPy only) for small problems.

Each reference module has the same small interface: ``NAME`` and ``trace(problem) -> Trace``, taking and
returning plain NumPy records (``lstm_compare.lstm.records``); one whose accuracy is coarser than the dtype's may
declare ``TOLERANCE`` (any object with ``rtol`` and ``atol``).  Frameworks are imported only when asked for, so
a missing one is reported in one line while the other still works.
"""

import importlib
from types import ModuleType

from lstm_compare.lstm.records import BACKWARD_TENSORS, FORWARD_TENSORS, Problem, Totals, Trace

MODULES = {name: f"lstm_compare.references.{module}"
           for name, module in (("torch", "torch_lstm"), ("jax", "jax_lstm"), ("numeric", "numeric"))}
REFERENCES = ("torch", "jax")  # the default set; MODULES may hold more that are asked for by name
# Model references (references/model.py): ``NAME`` and ``trace_model(problem: ModelProblem) -> ModelTrace``.
MODEL_MODULES = {"torch": "lstm_compare.references.torch_model", "jax": "lstm_compare.references.jax_model"}


class ReferenceUnavailable(RuntimeError):
    """A reference framework is not installed or fails to import."""


class ReferenceRefused(ValueError):
    """A reference cannot take this problem (finite differences on one too large); the message is one sentence."""


def load(name: str) -> ModuleType:
    """The reference module called ``name`` (one of MODULES: 'torch', 'jax', 'numeric')."""
    if name not in MODULES:
        raise ReferenceUnavailable(f"unknown reference {name!r}: choose from {', '.join(MODULES)}")
    try:
        return importlib.import_module(MODULES[name])
    except ImportError as error:
        raise ReferenceUnavailable(f"reference {name!r} is unavailable: {error}") from None


def load_model(name: str) -> ModuleType:
    """The model-variant reference module called ``name`` (one of MODEL_MODULES)."""
    if name not in MODEL_MODULES:
        raise ReferenceUnavailable(f"reference {name!r} does not run model variants: choose from "
                                   f"{', '.join(MODEL_MODULES)}")
    try:
        return importlib.import_module(MODEL_MODULES[name])
    except ImportError as error:
        raise ReferenceUnavailable(f"reference {name!r} is unavailable: {error}") from None


def available() -> list[str]:
    """Names of the default references (REFERENCES) whose framework imports here."""
    names = []
    for name in REFERENCES:
        try:
            load(name)
        except ReferenceUnavailable:
            continue
        names.append(name)
    return names


__all__ = ["BACKWARD_TENSORS", "FORWARD_TENSORS", "MODEL_MODULES", "Problem", "REFERENCES", "ReferenceRefused",
           "ReferenceUnavailable", "Totals", "Trace", "available", "load", "load_model"]
