"""A hand-written LSTM in NumPy, in the question's convention.

Parameters are a dict: ``Wf, Wi, Wg, Wo`` of shape (X+H, H) acting as ``xh @ W`` on ``xh = [x, h_prev]``,
biases ``bf, bi, bg, bo`` (H,), and a dense head ``Wy`` (H, O), ``by`` (O,).  Every function works on one
sequence element ``x`` of shape (X,) or on a batch of shape (B, X); parameter gradients are summed over the
batch.  Only NumPy is needed, exactly like a user's own file.
"""

from typing import Mapping, Sequence

import numpy as np

PARAM_NAMES = ("Wf", "Wi", "Wg", "Wo", "Wy", "bf", "bi", "bg", "bo", "by")
CACHE_FIELDS = ("xh", "f_pre", "f", "i_pre", "i", "g_pre", "g", "o_pre", "o", "c", "c_tanh", "c_prev", "h")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor warns for large |z|; keeps z's dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def init_params(inputs: int, hidden: int, outputs: int, *, seed: int | None,
                dtype: np.typing.DTypeLike = np.float64) -> dict[str, np.ndarray]:
    """Xavier-scaled weights and small biases from a seeded ``numpy.random.Generator``."""
    rng = np.random.default_rng(seed)
    X, H, O = inputs, hidden, outputs
    params = {}
    for name in ("Wf", "Wi", "Wg", "Wo"):
        params[name] = rng.normal(size=(X + H, H)) * np.sqrt(2 / (X + 2 * H))
    params["Wy"] = rng.normal(size=(H, O)) * np.sqrt(2 / (H + O))
    for name in ("bf", "bi", "bg", "bo"):
        params[name] = rng.normal(size=H) * 0.1
    params["by"] = rng.normal(size=O) * 0.1
    return {name: params[name].astype(dtype) for name in PARAM_NAMES}


def _sum_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a^T b summed over every leading (batch) axis: outer(a, b) for 1-D vectors."""  # (A,), (B,) -> (A, B)
    lead = list(range(a.ndim - 1))
    return np.tensordot(a, b, axes=(lead, lead))


def _sum_batch(d: np.ndarray) -> np.ndarray:
    """Sum a per-element gradient over the batch axes, leaving the last axis."""
    return d.reshape(-1, d.shape[-1]).sum(axis=0)


def lstm(params: Mapping[str, np.ndarray], x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One step forward: returns (y, h, c, cache) with the cache fields in ``CACHE_FIELDS`` order."""
    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)
    f_pre = xh @ params["Wf"] + params["bf"]  # ([B,] H)
    i_pre = xh @ params["Wi"] + params["bi"]
    g_pre = xh @ params["Wg"] + params["bg"]
    o_pre = xh @ params["Wo"] + params["bo"]
    f, i, g, o = sigmoid(f_pre), sigmoid(i_pre), np.tanh(g_pre), sigmoid(o_pre)
    c = f * c_prev + i * g
    c_tanh = np.tanh(c)
    h = o * c_tanh
    y = h @ params["Wy"] + params["by"]  # ([B,] O)
    cache = (xh, f_pre, f, i_pre, i, g_pre, g, o_pre, o, c, c_tanh, c_prev, h)
    return y, h, c, cache


def dlstm(params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
          cache: Sequence[np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One step backward: returns (dparams, dh_prev, dc_prev); dparams is this step's contribution."""
    xh, f_pre, f, i_pre, i, g_pre, g, o_pre, o, c, c_tanh, c_prev, h = cache
    H = h.shape[-1]
    dh = dy @ params["Wy"].T + dh_next  # ([B,] H)
    dc = dc_next + dh * o * (1 - c_tanh**2)
    df_pre = dc * c_prev * f * (1 - f)
    di_pre = dc * g * i * (1 - i)
    dg_pre = dc * i * (1 - g**2)
    do_pre = dh * c_tanh * o * (1 - o)
    dxh = (df_pre @ params["Wf"].T + di_pre @ params["Wi"].T
           + dg_pre @ params["Wg"].T + do_pre @ params["Wo"].T)  # ([B,] X+H)
    dparams = {
        "Wf": _sum_outer(xh, df_pre), "Wi": _sum_outer(xh, di_pre),
        "Wg": _sum_outer(xh, dg_pre), "Wo": _sum_outer(xh, do_pre),
        "Wy": _sum_outer(h, dy),
        "bf": _sum_batch(df_pre), "bi": _sum_batch(di_pre),
        "bg": _sum_batch(dg_pre), "bo": _sum_batch(do_pre),
        "by": _sum_batch(dy),
    }
    return dparams, dxh[..., -H:], dc * f


def lstm_loss(params: Mapping[str, np.ndarray], h0: np.ndarray, c0: np.ndarray, inputs: np.ndarray, targets: np.ndarray
              ) -> tuple[np.ndarray, list[np.ndarray], float, np.ndarray, np.ndarray, list[tuple[np.ndarray, ...]]]:
    """Run the sequence: returns (y_last, outputs, loss, h_T, c_T, caches).

    loss = sum over steps (and batch) of the mean over outputs of (y_t - target_t)^2.
    """
    h, c = h0, c0
    loss = 0.0
    outputs, caches = [], []
    for x, target in zip(inputs, targets):
        y, h, c, cache = lstm(params, x, h, c)
        loss += np.sum(np.mean((y - target) ** 2, axis=-1))
        outputs.append(y)
        caches.append(cache)
    return y, outputs, loss, h, c, caches


def dlstm_loss(params: Mapping[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray,
               outputs: Sequence[np.ndarray], caches: Sequence[Sequence[np.ndarray]]) -> dict[str, np.ndarray]:
    """Backward through the whole sequence: returns the summed dparams."""
    dparams = {name: np.zeros_like(value) for name, value in params.items()}
    dh = np.zeros_like(caches[0][-1])
    dc = np.zeros_like(caches[0][-1])
    for y, target, cache in reversed(list(zip(outputs, targets, caches))):
        dy = 2 * (y - target) / y.shape[-1]
        step, dh, dc = dlstm(params, dy, dh, dc, cache)
        for name, value in step.items():
            dparams[name] += value
    return dparams
