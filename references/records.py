"""Framework-free records that every reference takes and returns: plain NumPy arrays only."""

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import numpy as np

from references.layout import GATE_BIASES, GATE_WEIGHTS, SEED_GATES

# Per-step tensors, each stored stacked over steps as (T, [B,] n).
FORWARD_TENSORS = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "h", "y")
STATE_TENSORS = ("h_prev", "c_prev")  # the state entering each step
BACKWARD_TENSORS = ("dy", "df_pre", "di_pre", "dg_pre", "do_pre", "dh_next", "dc_next", "dh_prev", "dc_prev")


@dataclass(frozen=True)
class Problem:
    """One LSTM run to reproduce: seed-layout parameters, a sequence, its targets and the initial state."""

    params: Mapping[str, np.ndarray]
    inputs: np.ndarray  # (T, [B,] X)
    targets: np.ndarray  # (T, [B,] O)
    h0: np.ndarray  # ([B,] H)
    c0: np.ndarray  # ([B,] H)

    @property
    def steps(self):
        return self.inputs.shape[0]

    @property
    def batched(self):
        return self.inputs.ndim == 3

    @property
    def dtype(self):
        return self.inputs.dtype

    def astype(self, dtype):
        """The same problem with every array cast to ``dtype``."""
        cast = lambda a: np.asarray(a, dtype=dtype)  # noqa: E731
        return Problem({k: cast(v) for k, v in self.params.items()}, cast(self.inputs), cast(self.targets),
                       cast(self.h0), cast(self.c0))


@dataclass(frozen=True)
class Totals:
    """Whole-sequence results: loss, final state, and the gradient of every parameter and input."""

    loss: float
    outputs: np.ndarray  # (T, [B,] O): y_t for every step
    h_last: np.ndarray
    c_last: np.ndarray
    grads: Mapping[str, np.ndarray]  # seed layout: Wf ... by
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

    def __post_init__(self):
        object.__setattr__(self, "forward", MappingProxyType(dict(self.forward)))
        object.__setattr__(self, "backward", MappingProxyType(dict(self.backward)))

    def step_param_grads(self, t, inputs):
        """Step t's contribution to every parameter's gradient (seed layout), from ``inputs`` (T, [B,] X)."""
        return {name: grads[0] for name, grads in self.param_grads_at([t], inputs).items()}

    def param_grads_at(self, steps, inputs):
        """The contributions of several steps at once: each (len(steps), *parameter shape)."""
        steps = np.asarray(steps)
        xh = np.concatenate([inputs[steps], self.forward["h_prev"][steps]], axis=-1)  # (S, [B,] X+H)
        grads = {}
        for gate, weight, bias in zip(SEED_GATES, GATE_WEIGHTS, GATE_BIASES):
            d_pre = self.backward[f"d{gate}_pre"][steps]  # (S, [B,] H)
            grads[weight] = stepwise_outer(xh, d_pre)
            grads[bias] = d_pre if d_pre.ndim == 2 else d_pre.sum(axis=1)
        dy = self.backward["dy"][steps]
        grads["Wy"] = stepwise_outer(self.forward["h"][steps], dy)
        grads["by"] = dy if dy.ndim == 2 else dy.sum(axis=1)
        return grads


def stepwise_outer(a, b):
    """Per step s: a_s^T b_s summed over the batch, i.e. outer(a_s, b_s) unbatched."""  # (S, [B,] A), (S, [B,] C)
    if a.ndim == 2:
        return a[:, :, None] * b[:, None, :]  # (S, A, C)
    return np.swapaxes(a, 1, 2) @ b  # (S, A, C)


def grads_entering_later_steps(d_prev):
    """dL/d(state_t) through later steps only: step t+1's d*_prev, and zero after the last step."""
    d_next = np.zeros_like(d_prev)
    d_next[:-1] = d_prev[1:]
    return d_next
