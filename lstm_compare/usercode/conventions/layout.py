"""Weight layouts people write, described as data, with the conversions to and from the internal layout.

Internally every gate k in f, i, g, o has ``Wk`` (X+H, H) acting on ``[x, h]`` from the right and ``bk`` (H,);
the head has ``Wy`` (H, O) and ``by`` (O,) (``references/cell.py``).  A user's parameter is a grid of blocks:
along its input axis the parts ``rows`` ('x': the X rows acting on x, 'h': the H rows acting on h, '1': the
bias as one row), along its output axis the gate blocks ``gates`` (H columns each; 'y' is the head, O columns).
``left`` stores it transposed (``W @ v`` on column vectors); ``vector`` stores a one-row bias as 1-D.

    cs231n   Wx = Matrix("Wx", ("x",), "ifog"),  Wh = Matrix("Wh", ("h",), "ifog"),
             b = Matrix("b", ("1",), "ifog", vector=True)
    coursera Wf = Matrix("Wf", ("h", "x"), "f", left=True),  bf = Matrix("bf", ("1",), "f", left=True)  # (H, 1)
    karpathy WLSTM = Matrix("WLSTM", ("1", "x", "h"), "ifog")  # row 0: the bias

Parameter gradients convert exactly like the parameters (every internal entry sits in exactly one user entry),
so ``to_internal`` serves both.
"""

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lstm_compare.lstm.cell import GATES


@dataclass(frozen=True)
class Matrix:
    """One user parameter: which internal blocks it holds, and how it is stored."""

    name: str
    rows: tuple[str, ...]  # parts along the input axis: 'x', 'h', '1'
    gates: tuple[str, ...] | str  # gate blocks along the output axis: 'f', 'i', 'g', 'o', 'y'
    left: bool = False  # stored (out, in), acting as W @ v
    vector: bool = False  # a bias row stored 1-D

    def __post_init__(self) -> None:
        object.__setattr__(self, "gates", tuple(self.gates))
        if self.vector and self.rows != ("1",):
            raise ValueError(f"{self.name}: only a bias (rows ('1',)) can be stored as a vector")


@dataclass(frozen=True)
class Sizes:
    X: int
    H: int
    O: int

    @classmethod
    def of(cls, params: Mapping[str, np.ndarray]) -> "Sizes":
        """The sizes of an internal parameter dict."""
        H, O = params["Wy"].shape
        return cls(params["Wf"].shape[0] - H, H, O)

    def part(self, part: str) -> int:
        return {"x": self.X, "h": self.H, "1": 1}[part]

    def width(self, gate: str) -> int:
        return self.O if gate == "y" else self.H


def _block(params: Mapping[str, np.ndarray], part: str, gate: str, sizes: Sizes) -> np.ndarray:
    """The internal block that sits at (part, gate) of a user matrix, as a 2-D array."""
    if gate == "y":
        return {"h": params["Wy"], "1": params["by"][None]}[part]
    weight = params[f"W{gate}"]
    return {"x": weight[:sizes.X], "h": weight[sizes.X:], "1": params[f"b{gate}"][None]}[part]


def to_user(layout: Sequence[Matrix], params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The internal parameter dict in the user's layout: {matrix name: array}."""
    sizes = Sizes.of(params)
    out = {}
    for m in layout:
        grid = np.concatenate([np.concatenate([_block(params, part, gate, sizes) for gate in m.gates], axis=1)
                               for part in m.rows], axis=0)  # (in, out)
        if m.left:
            grid = grid.T
        out[m.name] = np.ascontiguousarray(grid[0] if m.vector else grid)
    return out


def user_shape(matrix: Matrix, sizes: Sizes) -> tuple[int, ...]:
    rows = sum(sizes.part(part) for part in matrix.rows)
    cols = sum(sizes.width(gate) for gate in matrix.gates)
    if matrix.vector:
        return (cols,)
    return (cols, rows) if matrix.left else (rows, cols)


def to_internal(layout: Sequence[Matrix], arrays: Mapping[str, Any], sizes: Sizes) -> dict[str, np.ndarray]:
    """User arrays (parameters or their gradients), keyed by matrix name -> the internal entries they cover."""
    pieces = {}
    for m in layout:
        grid = np.asarray(arrays[m.name])
        grid = grid[None] if m.vector else (grid.T if m.left else grid)  # (in, out)
        r = 0
        for part in m.rows:
            c = 0
            for gate in m.gates:
                pieces[gate, part] = grid[r:r + sizes.part(part), c:c + sizes.width(gate)]
                c += sizes.width(gate)
            r += sizes.part(part)
    out = {}
    for gate in GATES:
        if (gate, "x") in pieces and (gate, "h") in pieces:
            out[f"W{gate}"] = np.concatenate([pieces[gate, "x"], pieces[gate, "h"]], axis=0)
        if (gate, "1") in pieces:
            out[f"b{gate}"] = pieces[gate, "1"][0].copy()
    if ("y", "h") in pieces:
        out["Wy"] = pieces["y", "h"].copy()
    if ("y", "1") in pieces:
        out["by"] = pieces["y", "1"][0].copy()
    return out


def locate_entry(layout: Sequence[Matrix], name: str, index: Sequence[int], sizes: Sizes
                 ) -> tuple[Matrix, tuple[int, ...], str] | None:
    """Where the internal parameter entry ``name[index]`` lives in the user's layout: (matrix, user index, gate).

    ``name`` is an internal parameter name (``Wo``, ``bf``, ``Wy``); None when the layout does not hold it.
    """
    gate = name[1:]
    if name.startswith("W"):
        r = index[0]
        part, row = ("x", r) if gate != "y" and r < sizes.X else ("h", r if gate == "y" else r - sizes.X)
        col = index[1]
    else:
        part, row, col = "1", 0, index[0]
    for m in layout:
        if gate in m.gates and part in m.rows:
            r = sum(sizes.part(p) for p in m.rows[:m.rows.index(part)]) + row
            c = sum(sizes.width(g) for g in m.gates[:m.gates.index(gate)]) + col
            return m, ((c,) if m.vector else (c, r) if m.left else (r, c)), gate
    return None
