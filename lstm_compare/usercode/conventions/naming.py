"""The user's own names for the internal tensors, e.g. internal ``dWo[3, 1]`` is cs231n's ``dWx[3, 11]`` (o block)."""

from dataclasses import dataclass, field
from typing import Sequence

from lstm_compare.usercode.conventions.layout import Matrix, Sizes, locate_entry


@dataclass(frozen=True)
class Naming:
    """How one convention names parameters (through its layout) and per-step vectors."""

    convention: str
    layout: tuple[Matrix, ...] = ()  # the user's parameters
    vectors: dict[str, str] = field(default_factory=dict)  # internal tensor -> the user's name ('h' -> 'next_h')
    columns: bool = False  # the user's vectors are (n, N) columns
    batched: bool = True  # the user's vectors always have a batch axis (N = 1 for single vectors)
    sizes: Sizes = Sizes(1, 1, 1)  # the problem's X, H, O
    sequence_names: dict[str, str] = field(default_factory=dict)  # per-step tensor -> the whole-sequence array's name
    sequence_axes: str = "TNn"  # the axes of those arrays
    probed: frozenset[str] = frozenset()  # gates read off next_c / next_h with the others saturated

    def element(self, tensor: str, index: Sequence[int], mode: str = "isolated", step: int = -1) -> str:
        """'dWx[3, 11] (o block)' for the internal ``tensor`` at ``index``; the internal name when unchanged.

        In sequence mode a per-step tensor is an element of the user's whole-sequence array, time axis included.
        """
        if mode == "sequence" and step >= 0 and tensor in self.sequence_names:
            if not self.batched and len(index) == 1:
                return f"{self.sequence_names[tensor]}[{step}][{index[0]}]"  # a list of per-step vectors
            b, j = (0, *index) if len(index) == 1 else index
            where = {"T": step, "N": b, "n": j}
            return f"{self.sequence_names[tensor]}{[where[a] for a in self.sequence_axes]}"
        if tensor[:2] in ("dW", "db"):
            found = locate_entry(self.layout, tensor[1:], index, self.sizes)
            if found is not None:
                matrix, user_index, gate = found
                block = f" ({gate} block)" if len(matrix.gates) > 1 else ""
                return f"d{matrix.name}{list(user_index)}{block}"
        if tensor not in self.vectors and tensor not in ("dx", "dh0", "dc0"):
            return f"{tensor}{list(index)}" if index else tensor  # no name of the user's (e.g. an observed gate)
        name = self.vectors.get(tensor, tensor)
        if not index:
            return name
        if self.batched and len(index) == 1:
            index = (0, *index)
        if self.columns:
            index = index[::-1]
        return f"{name}{list(index)}"

