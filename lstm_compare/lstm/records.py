"""Framework-free records that every reference takes and returns: plain NumPy arrays only."""

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lstm_compare.lstm.cell import (BACKWARD_TENSORS, FORWARD_TENSORS, PARAM_NAMES, STATE_TENSORS, output_gradient,
                             param_grad_parts, param_grads_at)

__all__ = ["BACKWARD_TENSORS", "FORWARD_TENSORS", "STATE_TENSORS", "Problem", "Totals", "Trace",
           "grads_entering_later_steps"]  # the tensor names are re-exported from the cell description


@dataclass(frozen=True)
class Problem:
    """One LSTM run to reproduce: seed-layout parameters, a sequence, its targets and the initial state."""

    params: Mapping[str, np.ndarray]
    inputs: np.ndarray  # (T, [B,] X)
    targets: np.ndarray  # (T, [B,] O)
    h0: np.ndarray  # ([B,] H)
    c0: np.ndarray  # ([B,] H)
    # (T, [B,] O): dL/dy_t given from outside, for one cell of a model (references/model.py), whose y is its own h
    # (an identity head) and whose h_t feeds the layer above or the model's head; targets are then unused.
    upstream: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    @property
    def batched(self) -> bool:
        return self.inputs.ndim == 3

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.inputs.dtype

    def astype(self, dtype: np.typing.DTypeLike) -> "Problem":
        """The same problem with every array cast to ``dtype``."""
        cast: Callable[[Any], np.ndarray] = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
        return Problem({k: cast(v) for k, v in self.params.items()}, cast(self.inputs), cast(self.targets),
                       cast(self.h0), cast(self.c0), None if self.upstream is None else cast(self.upstream))

    def output_gradient(self, y: np.ndarray, t: int | slice = slice(None)) -> np.ndarray:
        """dL/dy at step ``t`` (default: every step) for outputs ``y``: the loss's (references/cell.py), or the
        ``upstream`` gradient given."""
        if self.upstream is not None:
            return self.upstream[t]
        return output_gradient(y, self.targets[t])


@dataclass(frozen=True)
class Totals:
    """Whole-sequence results: loss, final state, and the gradient of every parameter and input."""

    loss: float
    outputs: np.ndarray  # (T, [B,] O): y_t for every step
    h_last: np.ndarray
    c_last: np.ndarray
    grads: Mapping[str, np.ndarray]  # internal layout: Wf ... by
    dinputs: np.ndarray  # (T, [B,] X)
    dh0: np.ndarray
    dc0: np.ndarray


@dataclass(frozen=True)
class Trace:
    """Every per-step forward tensor and gradient of one reference, plus its totals.

    ``forward`` holds FORWARD_TENSORS and STATE_TENSORS, ``backward`` holds BACKWARD_TENSORS, each (T, [B,] n).
    Per-step parameter-gradient contributions are computed on demand by ``step_param_grads(t)`` so that no
    T copies of parameter-sized arrays are ever held at once.
    """

    reference: str
    forward: Mapping[str, np.ndarray]
    backward: Mapping[str, np.ndarray]
    totals: Totals
    peepholes: bool = False  # a peephole cell's trace (references/cell.py): its steps contribute dpf, dpi, dpo

    def __post_init__(self) -> None:
        object.__setattr__(self, "forward", MappingProxyType(dict(self.forward)))
        object.__setattr__(self, "backward", MappingProxyType(dict(self.backward)))

    def step_param_grads(self, t: int, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Step t's contribution to every parameter's gradient (internal layout), from ``inputs`` (T, [B,] X)."""
        return {name: grads[0] for name, grads in self.param_grads_at([t], inputs).items()}

    def param_grads_at(self, steps: Sequence[int] | np.ndarray, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The contributions of several steps at once: each (len(steps), *parameter shape)."""
        return param_grads_at(steps, inputs, self.forward, self.backward, self.peepholes)

    def param_grad_parts(self, steps: Sequence[int] | np.ndarray, inputs: np.ndarray,
                         names: Sequence[str] = PARAM_NAMES) -> dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """``param_grads_at`` for ``names`` only, each weight as its two outer-product factors
        (``lstm_compare.lstm.cell.param_grad_parts``)."""
        return param_grad_parts(steps, inputs, self.forward, self.backward, names)


def grads_entering_later_steps(d_prev: np.ndarray) -> np.ndarray:
    """dL/d(state_t) through later steps only: step t+1's d*_prev, and zero after the last step."""
    d_next = np.zeros_like(d_prev)
    d_next[:-1] = d_prev[1:]
    return d_next
