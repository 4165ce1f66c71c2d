"""LSTM models built from the cell (``references/cell.py``): layers, directions, a projection, peepholes.

A model runs L layers; each layer runs one cell over the sequence per direction (the reverse direction reads the
sequence from its last step to its first), and layer k+1 reads layer k's outputs, the directions' h concatenated
(forward first, then reverse, aligned in time), as its input sequence.  A dense head y = out @ Wy + by on the
last layer's outputs and the question's loss close it, as for a single cell.  torch.nn.LSTM(num_layers,
bidirectional, proj_size) computes the same model.

Every (layer, direction) is a ``Slot``.  The model's parameters are one flat dict: each slot's cell parameters in
the internal layout (``Wf`` ... ``Wo`` (In + S, H) on [x, h_prev], ``bf`` ... ``bo`` (H,), with peepholes
``pf``, ``pi``, ``po`` (H,), with a projection ``Wr`` (H, P)) under the slot's suffix (``Wf_l1``, ``Wf_l1_reverse``),
plus the head ``Wy`` (D S, O) and ``by`` (O,), where S = P or H is the size of h and D the number of directions.
Initial states are stacked like torch's: h0 (L D, [B,] S) and c0 (L D, [B,] H), in ``Model.slots()`` order.

Per-slot records hold every per-step tensor in the slot's own processing order: step s of the reverse direction
is time T - 1 - s.  That is the order its recurrence runs, and the order in which a divergence is located.
"""

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from lstm_compare.lstm.cell import GATE_BIASES, GATE_WEIGHTS, PEEPHOLES, PROJECTION
from lstm_compare.lstm.records import Totals, Trace
from lstm_compare.lstm.where import DIRECTIONS, Direction, slot_label


@functools.total_ordering
@dataclass(frozen=True)
class Slot:
    """One layer (1-based) and direction of a model: one cell run over the whole sequence.

    Slots sort in data-flow order (layer 1 forward, layer 1 reverse, layer 2 forward, ...), as ``Model.slots()``
    lists them.
    """

    layer: int
    direction: Direction = "forward"  # "forward" (t = 0 ... T-1) or "reverse" (t = T-1 ... 0)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"a direction is 'forward' or 'reverse', not {self.direction!r}.")

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Slot):
            return NotImplemented
        return (self.layer, DIRECTIONS.index(self.direction)) < (other.layer, DIRECTIONS.index(other.direction))

    @property
    def suffix(self) -> str:
        """The suffix of this slot's parameter names: '_l1', '_l2_reverse'."""
        return f"_l{self.layer}" + ("_reverse" if self.reverse else "")

    @property
    def reverse(self) -> bool:
        return self.direction == "reverse"

    def label(self) -> str:
        """'layer 2, reverse direction'."""
        return slot_label(self.layer, self.direction)


@dataclass(frozen=True)
class Model:
    """The shape of a model: layers, directions, projection size P (0: none), peepholes."""

    layers: int = 1
    bidirectional: bool = False
    proj: int = 0
    peepholes: bool = False

    @property
    def plain(self) -> bool:
        """One layer, one direction, no projection, no peepholes: the single cell the question wrote."""
        return self == Model()

    @property
    def directions(self) -> tuple[Direction, ...]:
        return DIRECTIONS if self.bidirectional else DIRECTIONS[:1]

    def slots(self) -> tuple[Slot, ...]:
        """Every slot in data-flow order: layer 1 forward, layer 1 reverse, layer 2 forward, ..."""
        return tuple(Slot(layer, direction) for layer in range(1, self.layers + 1) for direction in self.directions)

    def state_size(self, hidden: int) -> int:
        """S, the size of h: P with a projection, H without."""
        return self.proj or hidden

    def input_size(self, layer: int, inputs: int, hidden: int) -> int:
        """The size of ``layer``'s input vector: X for layer 1, D S above it."""
        return inputs if layer == 1 else len(self.directions) * self.state_size(hidden)

    def output_size(self, hidden: int) -> int:
        """The size of the last layer's output, which the head reads: D S."""
        return len(self.directions) * self.state_size(hidden)

    def cell_params(self) -> tuple[str, ...]:
        """The names of one slot's cell parameters, unsuffixed."""
        return (*GATE_WEIGHTS, *GATE_BIASES, *(PEEPHOLES if self.peepholes else ()),
                *((PROJECTION,) if self.proj else ()))

    def param_names(self) -> tuple[str, ...]:
        """Every parameter of the model: each slot's suffixed cell parameters in slot order, then Wy, by."""
        return (*(name + slot.suffix for slot in self.slots() for name in self.cell_params()), "Wy", "by")

    def describe(self) -> str:
        """'2 layers, bidirectional, P=3, peepholes' (for labels and messages)."""
        parts = [f"{self.layers} layer{'s' if self.layers > 1 else ''}"]
        parts += ["bidirectional"] if self.bidirectional else []
        parts += [f"P={self.proj}"] if self.proj else []
        parts += ["peepholes"] if self.peepholes else []
        return ", ".join(parts)

    def check(self, hidden: int) -> None:
        """ValueError (one sentence) for a shape no model has."""
        if self.layers < 1:
            raise ValueError(f"a model has at least one layer, not {self.layers}.")
        if self.proj < 0 or self.proj >= hidden:
            raise ValueError(f"the projection size P must be 0 (none) or between 1 and H - 1 = {hidden - 1}, "
                             f"not {self.proj} (torch's proj_size < hidden_size).")


def slot_params(model: Model, params: Mapping[str, np.ndarray], slot: Slot) -> dict[str, np.ndarray]:
    """One slot's cell parameters, unsuffixed (``Wf`` ...), from the model's flat dict."""
    return {name: params[name + slot.suffix] for name in model.cell_params()}


@dataclass(frozen=True)
class ModelProblem:
    """One model run to reproduce: the model's shape, its flat parameters, a sequence, targets, initial states."""

    model: Model
    params: Mapping[str, np.ndarray]  # Model.param_names()
    inputs: np.ndarray  # (T, [B,] X)
    targets: np.ndarray  # (T, [B,] O)
    h0: np.ndarray  # (L D, [B,] S), in Model.slots() order
    c0: np.ndarray  # (L D, [B,] H)

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.inputs.dtype

    @property
    def hidden(self) -> int:
        return self.c0.shape[-1]

    def astype(self, dtype: np.typing.DTypeLike) -> "ModelProblem":
        """The same problem with every array cast to ``dtype``."""
        cast: Callable[[Any], np.ndarray] = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
        return ModelProblem(self.model, {k: cast(v) for k, v in self.params.items()}, cast(self.inputs),
                            cast(self.targets), cast(self.h0), cast(self.c0))


@dataclass(frozen=True)
class ModelTotals:
    """Whole-model results: the loss, the head's outputs, final states, and every gradient."""

    loss: float
    outputs: np.ndarray  # (T, [B,] O)
    h_last: np.ndarray  # (L D, [B,] S)
    c_last: np.ndarray  # (L D, [B,] H)
    grads: Mapping[str, np.ndarray]  # Model.param_names()
    dinputs: np.ndarray  # (T, [B,] X)
    dh0: np.ndarray  # (L D, [B,] S)
    dc0: np.ndarray  # (L D, [B,] H)


@dataclass(frozen=True)
class SlotTrace:
    """Every per-step tensor of one slot, in its processing order (step s of the reverse direction is time T-1-s).

    ``inputs``: the slot's input sequence (T, [B,] In) in that order.  ``forward`` holds the cell's forward
    tensors (``lstm_compare.lstm.cell``: f_pre ... o, c, c_tanh, h, and m with a projection) and h_prev, c_prev;
    ``backward`` holds dh_out (dL/dh_t from outside the recurrence: the head, or the layer above), dh (the whole
    dL/dh_t = dh_out + dh_next), df_pre ... do_pre, dh_prev, dc_prev, dh_next, dc_next and dx (dL/d input_t).
    """

    slot: Slot
    inputs: np.ndarray
    forward: Mapping[str, np.ndarray]
    backward: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        object.__setattr__(self, "forward", MappingProxyType(dict(self.forward)))
        object.__setattr__(self, "backward", MappingProxyType(dict(self.backward)))


@dataclass(frozen=True)
class ModelTrace:
    """One reference's run of a model: every slot's per-step tensors, and the whole-model totals."""

    reference: str
    model: Model
    slots: Mapping[Slot, SlotTrace]
    totals: ModelTotals


def slot_index(model: Model, slot: Slot) -> int:
    """The slot's row in stacked states (h0, c0, h_last, ...): torch's order, layer-major."""
    return model.slots().index(slot)


def as_cell_trace(trace: ModelTrace, problem: ModelProblem, slot: Slot) -> Trace:
    """One slot of a model trace as a single-cell ``Trace`` whose head is the identity.

    The slot's cell then looks like the question's: y_t = h_t @ I + 0 and dy_t = dh_out_t, the gradient the
    slot's h_t receives from outside its recurrence; the totals are the slot's (its parameters' gradients, its
    input's gradient, its initial state's), with the identity head's gradients formed like any step's.
    """
    st = trace.slots[slot]
    k = slot_index(trace.model, slot)
    forward = {**st.forward, "y": st.forward["h"]}
    backward = {**st.backward, "dy": st.backward["dh_out"]}
    cell = Trace(trace.reference, forward, backward, _placeholder_totals(st), trace.model.peepholes)
    steps = np.arange(problem.steps)
    head = {name: value.sum(axis=0) for name, value in cell.param_grads_at(steps, st.inputs).items()
            if name in ("Wy", "by")}
    grads = {**{name: trace.totals.grads[name + slot.suffix] for name in trace.model.cell_params()}, **head}
    totals = Totals(loss=0.0, outputs=st.forward["h"], h_last=trace.totals.h_last[k], c_last=trace.totals.c_last[k],
                    grads=grads, dinputs=st.backward["dx"], dh0=trace.totals.dh0[k], dc0=trace.totals.dc0[k])
    return Trace(trace.reference, forward, backward, totals, trace.model.peepholes)


def _placeholder_totals(st: SlotTrace) -> Totals:
    h = st.forward["h"]
    return Totals(0.0, h, h[-1], st.forward["c"][-1], {}, st.backward["dx"], h[0], st.forward["c"][0])
