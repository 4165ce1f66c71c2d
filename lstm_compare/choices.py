"""What a user may choose, as ``Literal`` types, and the one sentence for a wrong choice.

The command line, ``ProblemSpec``, ``Config``, ``assert_lstm_matches`` and the pytest fixture all say a wrong value
in these words (argparse's own, for the flags), so a mistake reads the same wherever it is made.  NumPy-free.
"""

import math
import numbers
from typing import TYPE_CHECKING, Iterable, Literal, get_args

from lstm_compare.errors import UsageError
from lstm_compare.lstm.where import MODES, Mode  # noqa: F401  # the modes, named once (lstm/where.py)

if TYPE_CHECKING:
    from lstm_compare.modes.records import Config

Dtype = Literal["float64", "float32"]
Reference = Literal["torch", "jax", "numeric"]  # lstm_compare.references.MODULES (a test checks they agree)
Convention = Literal["auto", "declared", "question", "cs231n", "coursera", "karpathy"]  # conventions.CHOICES

DTYPES: tuple[Dtype, ...] = get_args(Dtype)
REFERENCE_NAMES: tuple[Reference, ...] = get_args(Reference)
CONVENTIONS: tuple[Convention, ...] = get_args(Convention)
DEFAULT_REFERENCES: tuple[Reference, ...] = ("torch", "jax")


def invalid_choice(value: object, choices: tuple[str, ...]) -> str | None:
    """argparse's sentence for a value not among ``choices``, or None."""
    if isinstance(value, str) and value in choices:
        return None
    return f"invalid choice: {value!r} (choose from {', '.join(repr(c) for c in choices)})"


def whole_number_fault(value: object, minimum: int) -> str | None:
    """The sentence for what is not a whole number of at least ``minimum`` (a bool is not one), or None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return f"{value!r} is not a whole number"
    if value < minimum:
        return f"{value} is below the minimum of {minimum}"
    return None


def references_fault(names: object) -> str | None:
    """The sentence for a list of references that names none or an unknown one, or None."""
    items = _items(names)
    if not isinstance(names, str) and items and all(name in REFERENCE_NAMES for name in items):
        return None
    texts = [item for item in items if isinstance(item, str)]
    shown = ",".join(texts) if items and len(texts) == len(items) and not isinstance(names, str) else names
    return f"{shown!r}: choose one or more of {', '.join(REFERENCE_NAMES)}"


def modes_fault(modes: object) -> str | None:
    """The sentence for a list of modes that names none or an unknown one, or None."""
    items = _items(modes)
    if isinstance(modes, str) or not items:
        return f"{modes!r}: choose one or more of {', '.join(MODES)}"
    unknown = [mode for mode in items if mode not in MODES]
    return f"unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}" if unknown else None


def factor_fault(value: object) -> str | None:
    """The sentence for a tolerance factor that is not a finite number of at least 1, or None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 1 <= float(value) < math.inf:
        return f"{value!r} is not a finite number of at least 1"
    return None


def timeout_fault(value: object) -> str | None:
    """The sentence for a time limit that is not a positive, finite number of seconds (None: the default), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < math.inf:
        return f"{value!r} is not a positive, finite number of seconds"
    return None


def check_config(config: "Config") -> None:
    """``Config.__post_init__``: a ``UsageError`` naming the first wrong field in the command line's words; the
    references and modes, given as any sequence, are kept as tuples."""
    for name, fault in (("references", references_fault(config.references)), ("modes", modes_fault(config.modes)),
                        ("convention", invalid_choice(config.convention, CONVENTIONS)),
                        ("timeout", timeout_fault(config.timeout)),
                        ("tolerance_factor", factor_fault(config.tolerance_factor))):
        if fault:
            raise UsageError(f"{name}: {fault}.")
    object.__setattr__(config, "references", tuple(dict.fromkeys(config.references)))  # once each, in order
    object.__setattr__(config, "modes", tuple(dict.fromkeys(config.modes)))


def _items(values: object) -> tuple[object, ...]:
    return tuple(values) if isinstance(values, Iterable) else ()
