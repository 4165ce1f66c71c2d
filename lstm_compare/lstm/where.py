"""Where a measurement belongs: one location key, carried by diffs, findings, catalogs, baselines and assertions.

A leaf module: the words for modes, phases and directions, and ``Where`` with its one sort order.
"""

from dataclasses import dataclass, replace
from typing import Callable, Literal, Protocol, Sequence, TypeVar

Mode = Literal["isolated", "chained", "sequence"]
Phase = Literal["forward", "backward"]
# a layer's direction: "forward" runs t = 0 ... T-1, "reverse" runs t = T-1 ... 0; "" for the model's own head
Direction = Literal["forward", "reverse", ""]

MODES: tuple[Mode, ...] = ("isolated", "chained", "sequence")
PHASES: tuple[Phase, ...] = ("forward", "backward")
DIRECTIONS: tuple[Direction, ...] = ("forward", "reverse")


@dataclass(frozen=True)
class Where:
    """Which comparison a measurement belongs to: the reference, the mode, the phase, the tensor, and in a model
    the layer (1-based; 0 for the model's own head, loss and input gradient) and direction."""

    reference: str
    mode: Mode
    phase: Phase
    tensor: str
    layer: int = 1
    direction: Direction = "forward"

    def anywhere(self) -> "Where":
        """The same place against no particular reference (how a catalog names where a bug must show)."""
        return replace(self, reference="")

    def slot_prefix(self) -> str:
        """'layer 2, reverse direction, ': the start of a place in a model; for layer 0, 'the model's head and
        input, ', or 'the whole model, ' for an exception there (raised in the whole-model functions)."""
        if self.layer == 0:
            return "the whole model, " if self.tensor == "exception" else "the model's head and input, "
        return f"{slot_label(self.layer, self.direction)}, "

    def place(self, step: int | None, gate: str = "", user_tensor: str = "", name_tensor: bool = False,
              in_model: bool = False) -> str:
        """'backward step 11, gate f, dWf (yours: dWx[0, 9] (f block))': this place at ``step`` as a person reads
        it ('(whole sequence)' for None; '..., tensor dWf' with ``name_tensor``), in a model (``in_model``)
        prefixed with its slot."""
        step_text = " (whole sequence)" if step is None else f" step {step}"
        gate_text = f", gate {gate}" if gate else ""
        yours = f" (yours: {user_tensor})" if user_tensor else ""
        slot = self.slot_prefix() if in_model else ""
        return f"{slot}{self.phase}{step_text}{gate_text}, {'tensor ' if name_tensor else ''}{self.tensor}{yours}"


def slot_label(layer: int, direction: str) -> str:
    """'layer 2, reverse direction'."""
    return f"layer {layer}, {direction} direction"


class Located(Protocol):
    """Anything that carries a ``Where``."""

    @property
    def where(self) -> Where: ...


L = TypeVar("L", bound=Located)


def rank(references: Sequence[str], reference: str, mode: str) -> tuple[int, int]:
    """The one sort order of results: by reference as ``references`` lists them (others after), then by mode."""
    return (references.index(reference) if reference in references else len(references),
            MODES.index(mode) if mode in MODES else len(MODES))


def by_reference_and_mode(references: Sequence[str]) -> Callable[["Located | Where"], tuple[int, int]]:
    """``rank`` as a sort key for anything located (or a ``Where`` itself)."""
    def key(item: "Located | Where") -> tuple[int, int]:
        where = item if isinstance(item, Where) else item.where
        return rank(references, where.reference, where.mode)

    return key


def sorted_by_reference_and_mode(items: Sequence[L], references: Sequence[str]) -> list[L]:
    """``items`` in the one sort order of results (``by_reference_and_mode``), stable within each group."""
    return sorted(items, key=by_reference_and_mode(references))


class Placed:
    """Read-only views of a record's ``where`` field: ``record.tensor`` is ``record.where.tensor``."""

    where: Where

    @property
    def reference(self) -> str:
        return self.where.reference

    @property
    def mode(self) -> Mode:
        return self.where.mode

    @property
    def phase(self) -> Phase:
        return self.where.phase

    @property
    def tensor(self) -> str:
        return self.where.tensor

    @property
    def layer(self) -> int:
        return self.where.layer

    @property
    def direction(self) -> Direction:
        return self.where.direction
