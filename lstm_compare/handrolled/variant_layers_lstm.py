"""The model of ``lstm_compare/handrolled/variant_lstm.py`` with its parameters as a list of per-layer dicts.

``params = {"layers": [layer 1, layer 2, ...], "Wy": (D S, O), "by": (O,)}``, where each layer's dict holds the
forward direction's cell parameters (``Wf`` ... ``bo``, optionally ``pf, pi, po`` and ``Wr``) and, in a
bidirectional model, the reverse direction's under the same names with ``_reverse`` appended (``Wf_reverse``).
The gradients come back in the same shape.  The cell (``lstm``, ``dlstm``, ``CACHE_FIELDS``) is
``variant_lstm``'s, reused for every layer and direction as real code does.  Only NumPy is needed.
"""

from typing import Any, Mapping, Sequence

import numpy as np

from lstm_compare.handrolled.variant_lstm import CACHE_FIELDS, Cache, _cell, _dcell, _sum_batch, _sum_outer, dlstm, lstm

MODEL_PARAMS = "layers"  # the marker: parameters as {"layers": [per-layer dicts], "Wy": ..., "by": ...}
REVERSE = "_reverse"

__all__ = ["CACHE_FIELDS", "MODEL_PARAMS", "dlstm", "dlstm_model_loss", "lstm", "lstm_model_loss"]


def _direction(layer: Mapping[str, np.ndarray], d: int) -> dict[str, np.ndarray]:
    """One direction's cell parameters from a layer's dict, unsuffixed (d = 0 forward, 1 reverse)."""
    if d:
        return {name[:-len(REVERSE)]: value for name, value in layer.items() if name.endswith(REVERSE)}
    return {name: value for name, value in layer.items() if not name.endswith(REVERSE)}


def lstm_model_loss(params: Mapping[str, Any], h0: np.ndarray, c0: np.ndarray, inputs: np.ndarray,
                    targets: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, list[list[list[Cache]]]]:
    """Run the model: returns (outputs, loss, hs, cs, caches), exactly as ``variant_lstm.lstm_model_loss``."""
    layers = params["layers"]
    D = 2 if "Wf" + REVERSE in layers[0] else 1
    seq = inputs  # (T, [B,] In)
    hs, cs, caches = [], [], []
    for k, layer in enumerate(layers):
        h_dirs, c_dirs, layer_caches = [], [], []
        for d in range(D):
            p = _direction(layer, d)
            h, c = h0[k * D + d], c0[k * D + d]
            times = range(len(seq) - 1, -1, -1) if d else range(len(seq))
            h_seq, c_seq = [np.empty(0)] * len(seq), [np.empty(0)] * len(seq)
            slot_caches: list[Cache] = [{}] * len(seq)  # each entry replaced at its time step
            for t in times:
                h, c, slot_caches[t] = _cell(p, seq[t], h, c)
                h_seq[t], c_seq[t] = h, c
            h_dirs.append(np.stack(h_seq))
            c_dirs.append(np.stack(c_seq))
            layer_caches.append(slot_caches)
        seq = np.concatenate(h_dirs, axis=-1)  # (T, [B,] D S)
        hs.append(seq)
        cs.append(np.concatenate(c_dirs, axis=-1))
        caches.append(layer_caches)
    outputs = seq @ params["Wy"] + params["by"]
    loss = float(np.sum(np.mean((outputs - targets) ** 2, axis=-1)))
    return outputs, loss, np.stack(hs), np.stack(cs), caches


def dlstm_model_loss(params: Mapping[str, Any], inputs: np.ndarray, targets: np.ndarray, outputs: np.ndarray,
                     caches: Sequence[Sequence[Sequence[Mapping[str, np.ndarray]]]]
                     ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    """Backward through the model: returns (dparams, dinputs, dh0, dc0), dparams shaped like ``params``."""
    layers = params["layers"]
    L, D, T = len(layers), len(caches[0]), len(inputs)
    dy = 2 * (outputs - targets) / outputs.shape[-1]  # (T, [B,] O)
    top = np.concatenate([np.stack([cache["h"] for cache in caches[-1][d]]) for d in range(D)], axis=-1)
    dlayers: list[dict[str, np.ndarray]] = [{} for _ in layers]
    dh0: list[np.ndarray] = [np.empty(0)] * (L * D)
    dc0: list[np.ndarray] = [np.empty(0)] * (L * D)
    dout = dy @ params["Wy"].T  # (T, [B,] D S): dL/d(this layer's outputs)
    for k in reversed(range(L)):
        first = caches[k][0][0]
        S = first["h"].shape[-1]
        din = np.zeros((T, *first["xh"][..., :-S].shape), first["xh"].dtype)  # (T, [B,] In)
        for d in range(D):
            p = _direction(layers[k], d)
            grads = {name: np.zeros_like(value) for name, value in p.items()}
            dh, dc = np.zeros_like(first["h"]), np.zeros_like(first["c"])
            for t in (range(T) if d else range(T - 1, -1, -1)):
                step, dx, dh, dc = _dcell(p, dout[t, ..., d * S:(d + 1) * S] + dh, dc, caches[k][d][t])
                din[t] += dx
                for name, value in step.items():
                    grads[name] += value
            dlayers[k].update({name + (REVERSE if d else ""): value for name, value in grads.items()})
            dh0[k * D + d], dc0[k * D + d] = dh, dc
        dout = din  # the layer below's outputs are this layer's inputs
    dparams = {"layers": [{name: dlayers[k][name] for name in layers[k]} for k in range(L)],
               "Wy": _sum_outer(top, dy), "by": _sum_batch(dy)}
    return dparams, dout, np.stack(dh0), np.stack(dc0)
