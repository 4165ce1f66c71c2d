"""A hand-written LSTM model in NumPy: stacked layers, both directions, a projection, peepholes.

One cell serves every layer and direction.  Its parameters are a dict: ``Wf, Wi, Wg, Wo`` (In+S, H) acting as
``xh @ W`` on ``xh = [x, h_prev]``, biases ``bf, bi, bg, bo`` (H,), and optionally

    peepholes ``pf, pi, po`` (H,):   f_pre += pf * c_prev;  i_pre += pi * c_prev;  o_pre += po * c
    a projection ``Wr`` (H, P):      m = o * tanh(c);  h = m @ Wr   (so h has S = P entries, c has H)

The variant is read off the keys present.  ``lstm``/``dlstm`` are that cell with a dense head ``Wy`` (S, O),
``by`` (O,), in the question's convention.  ``lstm_model_loss``/``dlstm_model_loss`` run the whole model (what
``torch.nn.LSTM(num_layers, bidirectional, proj_size)`` plus a ``Linear`` head computes) on one flat dict:
each layer's and direction's cell parameters under a suffix (``Wf_l1``, ``Wf_l1_reverse``, ``pf_l2``,
``Wr_l1`` ...; layers 1-based), and the head ``Wy`` (D S, O), ``by`` (O,) on the last layer's outputs, the
directions' h concatenated (forward first).  Everything works on 1-D vectors or on (B, n) batches; parameter
gradients are summed over the batch.  Only NumPy is needed, exactly like a user's own file.
"""

from typing import Mapping, Sequence

import numpy as np

GATES = ("f", "i", "g", "o")
CELL_PARAMS = ("Wf", "Wi", "Wg", "Wo", "bf", "bi", "bg", "bo", "pf", "pi", "po", "Wr")  # the last four optional
# The cache is a dict with these keys; "m" (o * tanh(c), before the projection) only in a projected cell.
CACHE_FIELDS = ("xh", "f_pre", "f", "i_pre", "i", "g_pre", "g", "o_pre", "o", "c", "c_tanh", "c_prev", "h", "m")

Params = Mapping[str, np.ndarray]
Cache = dict[str, np.ndarray]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor warns for large |z|; keeps z's dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _sum_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^T b summed over every leading (time, batch) axis: outer(a, b) for 1-D vectors."""  # (A,), (B,) -> (A, B)
    lead = list(range(a.ndim - 1))
    return np.tensordot(a, b, axes=(lead, lead))


def _sum_batch(d: np.ndarray) -> np.ndarray:
    """Sum a per-element gradient over the leading axes, leaving the last axis."""
    return d.reshape(-1, d.shape[-1]).sum(axis=0)


# --- the cell -------------------------------------------------------------------------------------------------

def _cell(p: Params, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, Cache]:
    """One cell step without a head: returns (h, c, cache)."""
    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] In+S)
    f_pre = xh @ p["Wf"] + p["bf"]  # ([B,] H)
    i_pre = xh @ p["Wi"] + p["bi"]
    g_pre = xh @ p["Wg"] + p["bg"]
    o_pre = xh @ p["Wo"] + p["bo"]
    if "pf" in p:  # peepholes: f and i look at the old cell state
        f_pre = f_pre + p["pf"] * c_prev
        i_pre = i_pre + p["pi"] * c_prev
    f, i, g = sigmoid(f_pre), sigmoid(i_pre), np.tanh(g_pre)
    c = f * c_prev + i * g
    if "po" in p:  # ... and o at the new one
        o_pre = o_pre + p["po"] * c
    o = sigmoid(o_pre)
    c_tanh = np.tanh(c)
    m = o * c_tanh  # ([B,] H)
    cache = {"xh": xh, "f_pre": f_pre, "f": f, "i_pre": i_pre, "i": i, "g_pre": g_pre, "g": g,
             "o_pre": o_pre, "o": o, "c": c, "c_tanh": c_tanh, "c_prev": c_prev}
    if "Wr" in p:
        h = m @ p["Wr"]  # ([B,] P)
        cache["m"] = m
    else:
        h = m
    cache["h"] = h
    return h, c, cache


def _dcell(p: Params, dh: np.ndarray, dc_next: np.ndarray, cache: Mapping[str, np.ndarray]
           ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """One cell step backward from dh = dL/dh_t (all of it) and dc_next: returns (dparams, dx, dh_prev, dc_prev).

    dparams holds this step's contribution to each of the cell's parameters (no head).
    """
    xh, f, i, g, o = cache["xh"], cache["f"], cache["i"], cache["g"], cache["o"]
    c, c_tanh, c_prev = cache["c"], cache["c_tanh"], cache["c_prev"]
    S = dh.shape[-1]
    dparams = {}
    if "Wr" in p:
        dparams["Wr"] = _sum_outer(cache["m"], dh)  # (H, P)
        dm = dh @ p["Wr"].T  # ([B,] H)
    else:
        dm = dh
    do_pre = dm * c_tanh * o * (1 - o)
    dc = dc_next + dm * o * (1 - c_tanh**2)
    if "po" in p:
        dc = dc + p["po"] * do_pre  # o_pre reads the new c
    df_pre = dc * c_prev * f * (1 - f)
    di_pre = dc * g * i * (1 - i)
    dg_pre = dc * i * (1 - g**2)
    dc_prev = dc * f
    if "pf" in p:
        dc_prev = dc_prev + p["pf"] * df_pre + p["pi"] * di_pre  # f_pre and i_pre read c_prev
        dparams["pf"] = _sum_batch(df_pre * c_prev)
        dparams["pi"] = _sum_batch(di_pre * c_prev)
        dparams["po"] = _sum_batch(do_pre * c)
    d_pre = {"f": df_pre, "i": di_pre, "g": dg_pre, "o": do_pre}
    dxh = np.zeros_like(xh)  # ([B,] In+S)
    for gate in GATES:
        dxh = dxh + d_pre[gate] @ p[f"W{gate}"].T
        dparams[f"W{gate}"] = _sum_outer(xh, d_pre[gate])
        dparams[f"b{gate}"] = _sum_batch(d_pre[gate])
    return dparams, dxh[..., :-S], dxh[..., -S:], dc_prev


def lstm(params: Params, inp: np.ndarray, h_old: np.ndarray, c_old: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Cache]:
    """One step forward with the head: returns (y, h, c, cache); the cache is a dict keyed by CACHE_FIELDS."""
    h, c, cache = _cell(params, inp, h_old, c_old)
    y = h @ params["Wy"] + params["by"]  # ([B,] O)
    return y, h, c, cache


def dlstm(params: Params, dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray, cache: Mapping[str, np.ndarray]
          ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One step backward: returns (dparams, dh_prev, dc_prev); dparams is this step's contribution to every
    parameter in ``params``."""
    dh = dy @ params["Wy"].T + dh_next  # ([B,] S)
    dparams, _, dh_prev, dc_prev = _dcell(params, dh, dc_next, cache)
    dparams["Wy"] = _sum_outer(cache["h"], dy)
    dparams["by"] = _sum_batch(dy)
    return {name: dparams[name] for name in params}, dh_prev, dc_prev


# --- the model ------------------------------------------------------------------------------------------------

def _shape(params: Params) -> tuple[int, int]:
    """(L, D): the number of layers and of directions, read off the parameter names."""
    layers = sum(1 for name in params if name.startswith("Wf_l") and not name.endswith("_reverse"))
    return layers, 2 if "Wf_l1_reverse" in params else 1


def _suffix(layer: int, direction: int) -> str:
    """'_l1', '_l1_reverse' (layer 1-based; direction 0 forward, 1 reverse)."""
    return f"_l{layer}" + ("_reverse" if direction else "")


def _slot(params: Params, suffix: str) -> dict[str, np.ndarray]:
    """One layer's and direction's cell parameters, unsuffixed."""
    return {name: params[name + suffix] for name in CELL_PARAMS if name + suffix in params}


def _times(steps: int, direction: int) -> range:
    """The order a direction processes time in: 0 ... T-1 forward, T-1 ... 0 in reverse."""
    return range(steps - 1, -1, -1) if direction else range(steps)


def lstm_model_loss(params: Params, h0: np.ndarray, c0: np.ndarray, inputs: np.ndarray, targets: np.ndarray
                    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, list[list[list[Cache]]]]:
    """Run the model: returns (outputs, loss, hs, cs, caches).

    h0 (L D, [B,] S) and c0 (L D, [B,] H) are stacked layer 1 forward, layer 1 reverse, layer 2 forward, ...;
    inputs (T, [B,] X), targets (T, [B,] O).  outputs (T, [B,] O) is the head on the last layer; loss = sum over
    steps (and batch) of the mean over outputs of (y - target)^2.  hs (L, T, [B,] D S) holds each layer's outputs
    as the next layer reads them, the directions concatenated in time order; cs (L, T, [B,] D H) the cell states
    arranged the same way.  caches[layer - 1][direction][t] is the cell's cache at time t (time order).
    """
    L, D = _shape(params)
    seq = inputs  # (T, [B,] In): this layer's input sequence
    hs, cs, caches = [], [], []
    for layer in range(1, L + 1):
        h_dirs, c_dirs, layer_caches = [], [], []
        for d in range(D):
            p = _slot(params, _suffix(layer, d))
            row = (layer - 1) * D + d  # the slot's row in h0, c0
            h, c = h0[row], c0[row]
            h_seq, c_seq, slot_caches = [], [], []
            for t in _times(len(seq), d):
                h, c, cache = _cell(p, seq[t], h, c)
                h_seq.append(h)
                c_seq.append(c)
                slot_caches.append(cache)
            if d:  # the reverse direction ran T-1 ... 0: back to time order
                h_seq, c_seq, slot_caches = h_seq[::-1], c_seq[::-1], slot_caches[::-1]
            h_dirs.append(np.stack(h_seq))  # (T, [B,] S)
            c_dirs.append(np.stack(c_seq))  # (T, [B,] H)
            layer_caches.append(slot_caches)
        out = np.concatenate(h_dirs, axis=-1)  # (T, [B,] D S)
        cell = np.concatenate(c_dirs, axis=-1)  # (T, [B,] D H)
        hs.append(out)
        cs.append(cell)
        caches.append(layer_caches)
        seq = out  # the next layer reads this layer's h
    outputs = seq @ params["Wy"] + params["by"]  # (T, [B,] O)
    loss = float(np.sum(np.mean((outputs - targets) ** 2, axis=-1)))
    return outputs, loss, np.stack(hs), np.stack(cs), caches


def dlstm_model_loss(params: Params, inputs: np.ndarray, targets: np.ndarray, outputs: np.ndarray,
                     caches: Sequence[Sequence[Sequence[Mapping[str, np.ndarray]]]]
                     ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Backward through the whole model: returns (dparams, dinputs, dh0, dc0).

    dparams has every key of ``params`` (whole-sequence gradients); dinputs (T, [B,] X); dh0, dc0 shaped like
    h0, c0.  Layers run from the last to the first; within a direction, time runs opposite to its forward.
    """
    L, D = _shape(params)
    T = len(inputs)
    dy = 2 * (outputs - targets) / outputs.shape[-1]  # (T, [B,] O)
    last = np.concatenate([np.stack([cache["h"] for cache in caches[-1][d]]) for d in range(D)], axis=-1)
    grads = {"Wy": _sum_outer(last, dy), "by": _sum_batch(dy)}
    # douts[k]: dL/d(layer k+1's outputs) from above it, the head for the last layer, (T, [B,] D S).
    douts = [np.zeros_like(last) for _ in range(L)]
    douts[-1] += dy @ params["Wy"].T
    dh0: list[np.ndarray] = [np.empty(0)] * (L * D)
    dc0: list[np.ndarray] = [np.empty(0)] * (L * D)
    dinputs = np.empty(0)
    for k in reversed(range(L)):
        first = caches[k][0][0]
        S = first["h"].shape[-1]
        din = np.zeros((T, *first["xh"][..., :-S].shape), first["xh"].dtype)  # (T, [B,] In): dL/d(this layer's inputs)
        for d in range(D):
            suffix = _suffix(k + 1, d)
            p = _slot(params, suffix)
            dh_out = douts[k][..., d * S:(d + 1) * S]  # (T, [B,] S)
            slot_grads = {name: np.zeros_like(value) for name, value in p.items()}
            dh, dc = np.zeros_like(first["h"]), np.zeros_like(first["c"])
            for t in reversed(_times(T, d)):
                step, dx, dh, dc = _dcell(p, dh_out[t] + dh, dc, caches[k][d][t])
                din[t] += dx
                for name, value in step.items():
                    slot_grads[name] += value
            grads.update({name + suffix: value for name, value in slot_grads.items()})
            dh0[k * D + d], dc0[k * D + d] = dh, dc
        if k:
            douts[k - 1] += din  # the layer below's outputs are this layer's inputs
        else:
            dinputs = din
    return {name: grads[name] for name in params}, dinputs, np.stack(dh0), np.stack(dc0)
