"""The LSTM cell, described once: gates, parameters, the tensors a step computes, the order they are computed in,
what each one's divergence suggests, and the per-step parameter-gradient formula.

Everything else (the references, the weight layouts, the comparison engine, the conventions that bind a user's
file) names tensors with this vocabulary.  The internal layout is the question's convention:

    xh = [x, h_prev]                                   ([B,] X+H)
    k_pre = xh @ Wk + bk   for k in f, i, g, o         Wk (X+H, H), bk (H,)
    f, i, o = sigmoid(f_pre, i_pre, o_pre);  g = tanh(g_pre)
    c = f * c_prev + i * g;  c_tanh = tanh(c);  h = o * c_tanh
    y = h @ Wy + by                                     the dense head: Wy (H, O), by (O,)
    loss = sum over steps (and batch) of mean over outputs of (y - target)**2

Two variants of the cell (``references/model.py`` describes the models built from it):

    peepholes (pf, pi, po, each (H,)):  f_pre += pf * c_prev;  i_pre += pi * c_prev;  o_pre += po * c
    projection (Wr (H, P)):             m = o * c_tanh;  h = m @ Wr   (so h and h_prev have P entries, c has H)
"""

from typing import Mapping, Sequence

import numpy as np

GATES = ("f", "i", "g", "o")  # the internal order of the per-gate parameters
GATE_NAMES = {"f": "forget", "i": "input", "g": "candidate", "o": "output"}
GATE_WEIGHTS = tuple(f"W{gate}" for gate in GATES)
GATE_BIASES = tuple(f"b{gate}" for gate in GATES)
HEAD = ("Wy", "by")
PARAM_NAMES = (*GATE_WEIGHTS, "Wy", *GATE_BIASES, "by")
PEEPHOLES = ("pf", "pi", "po")  # diagonal weights on c_prev (f, i) and on c (o)
PROJECTION = "Wr"  # h = m @ Wr
VARIANT_PARAMS = (*PEEPHOLES, PROJECTION)  # present only in cells of those variants

# Per-step tensors, each stored stacked over steps as (T, [B,] n).
PRE_ACTIVATIONS = tuple(f"{gate}_pre" for gate in GATES)
FORWARD_TENSORS = (*PRE_ACTIVATIONS, *GATES, "c", "c_tanh", "h", "y")
PROJECTED = "m"  # o * c_tanh before the projection, a forward tensor of projected cells only
STATE_TENSORS = ("h_prev", "c_prev")  # the state entering each step
BACKWARD_TENSORS = ("dy", "df_pre", "di_pre", "dg_pre", "do_pre", "dh_next", "dc_next", "dh_prev", "dc_prev")

# What a cache may hold, by these names (the question's order, which is also its default CACHE_FIELDS).
QUESTION_CACHE_FIELDS = ("xh", "f_pre", "f", "i_pre", "i", "g_pre", "g", "o_pre", "o", "c", "c_tanh", "c_prev", "h")
CACHE_FROM_CACHE = (*PRE_ACTIVATIONS, *GATES, "c_tanh", PROJECTED)  # compared only as read from a cache
CACHE_CHECKS = ("cache.xh", "cache.c_prev", "cache.c", "cache.h")  # the cache's own copies, which backward reads

# The computation order.  Forward, within a step: pre-activations, activations, c, c_tanh, h, y (c, h, y as the
# step returns them), then the cache's own copies; the whole-sequence loss last.  Backward, within a step, in
# dependency order: the head, the output gate (needs dh), the gates that need dc, then what flows out of the
# step (dx, dh_prev, dc_prev); the whole-sequence dh0, dc0 last.
FORWARD_ORDER = (*PRE_ACTIVATIONS, *GATES, "c", "c_tanh", PROJECTED, "h", "y", *CACHE_CHECKS)
BACKWARD_ORDER = ("dWy", "dby", "dWr", "dWo", "dbo", "dpo", "dWf", "dbf", "dpf", "dWi", "dbi", "dpi", "dWg", "dbg",
                  "dx", "dh_prev", "dc_prev", "dh0", "dc0")
PARAM_GRADS = tuple(f"d{name}" for name in (*GATE_WEIGHTS, "Wy", *GATE_BIASES, "by"))
GATE_PARAM_GRADS = tuple(name for name in PARAM_GRADS if name not in ("dWy", "dby"))
VARIANT_PARAM_GRADS = tuple(f"d{name}" for name in VARIANT_PARAMS)

# What a divergence first seen in one forward tensor suggests.
# What a whole-sequence forward returns once, after its per-step values: the loss and the final state (h_T, c_T).
SEQUENCE_FORWARD_TOTALS = ("loss", "h_last", "c_last")
FORWARD_HINTS = {"c": "the cell update c = f * c_prev + i * g", "c_tanh": "tanh(c)", "h": "h = o * tanh(c)",
                 PROJECTED: "m = o * tanh(c), before the projection",
                 "y": "the output head y = h @ Wy + by", "loss": "the loss (sum over steps of the mean squared error)",
                 "h_last": "the final h the whole-sequence forward returns (its last step's h)",
                 "c_last": "the final c the whole-sequence forward returns (its last step's c)"}


def output_gradient(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """dL/dy_t of the loss above: 2 (y_t - target_t) / O."""
    return 2 * (y - target) / y.shape[-1]


def gate_of(tensor: str) -> str:
    """'f', 'i', 'g' or 'o' for a tensor that belongs to one gate, '' otherwise."""
    if tensor in PRE_ACTIVATIONS:
        return tensor[0]
    if tensor in GATE_NAMES:
        return tensor
    if tensor[:2] in ("dW", "db", "dp") and tensor[2:] in GATE_NAMES:
        return tensor[2]
    return ""


def rank(phase: str, tensor: str) -> int:
    """Position of ``tensor`` within a step of ``phase``; exceptions come first (nothing after them ran)."""
    order = FORWARD_ORDER + SEQUENCE_FORWARD_TOTALS if phase == "forward" else BACKWARD_ORDER
    return -1 if tensor == "exception" else order.index(tensor)


def param_grads_at(steps: Sequence[int] | np.ndarray, inputs: np.ndarray, forward: Mapping[str, np.ndarray],
                   backward: Mapping[str, np.ndarray], peepholes: bool = False) -> dict[str, np.ndarray]:
    """Each parameter's gradient contribution at several steps, from a trace's per-step tensors.

    dWk = xh^T dk_pre and dbk = dk_pre (summed over the batch); dWy = h^T dy, dby = dy.  Each result is
    (len(steps), *parameter shape).  Variant cells add theirs: with ``peepholes``, dpf = c_prev df_pre,
    dpi = c_prev di_pre, dpo = c do_pre (summed over the batch); a projected cell (``forward`` holds "m",
    ``backward`` "dh", the whole dL/dh_t) dWr = m^T dh.
    """
    names = (*PARAM_NAMES, *(PEEPHOLES if peepholes else ()), *((PROJECTION,) if PROJECTED in forward else ()))
    parts = param_grad_parts(steps, inputs, forward, backward, names)
    return {name: stepwise_outer(*part) if isinstance(part, tuple) else part for name, part in parts.items()}


def param_grad_parts(steps: Sequence[int] | np.ndarray, inputs: np.ndarray, forward: Mapping[str, np.ndarray],
                     backward: Mapping[str, np.ndarray], names: Sequence[str] = PARAM_NAMES
                     ) -> dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """``param_grads_at`` for the parameters in ``names`` only, with each weight's contribution left as the two
    factors of ``stepwise_outer`` ((S, [B,] A), (S, [B,] C)), so that no parameter-sized array is formed here."""
    steps = np.asarray(steps)
    parts: dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]] = {}
    if any(name in GATE_WEIGHTS for name in names):
        xh = np.concatenate([inputs[steps], forward["h_prev"][steps]], axis=-1)  # (S, [B,] X+H)
    for gate, weight, bias in zip(GATES, GATE_WEIGHTS, GATE_BIASES):
        if weight in names or bias in names:
            d_pre = backward[f"d{gate}_pre"][steps]  # (S, [B,] H)
            if weight in names:
                parts[weight] = (xh, d_pre)
            if bias in names:
                parts[bias] = d_pre if d_pre.ndim == 2 else d_pre.sum(axis=1)
    if "Wy" in names or "by" in names:
        dy = backward["dy"][steps]
        if "Wy" in names:
            parts["Wy"] = (forward["h"][steps], dy)
        if "by" in names:
            parts["by"] = dy if dy.ndim == 2 else dy.sum(axis=1)
    for gate, state in (("f", "c_prev"), ("i", "c_prev"), ("o", "c")):
        if f"p{gate}" in names:
            product = forward[state][steps] * backward[f"d{gate}_pre"][steps]
            parts[f"p{gate}"] = product if product.ndim == 2 else product.sum(axis=1)
    if PROJECTION in names:
        parts[PROJECTION] = (forward[PROJECTED][steps], backward["dh"][steps])
    return parts


def stepwise_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per step s: a_s^T b_s summed over the batch, i.e. outer(a_s, b_s) unbatched."""  # (S, [B,] A), (S, [B,] C)
    if a.ndim == 2:
        return a[:, :, None] * b[:, None, :]  # (S, A, C)
    return np.swapaxes(a, 1, 2) @ b  # (S, A, C)
