"""A hand-written LSTM in NumPy, in the convention of Stanford CS231n (assignment 3, ``rnn_layers.py``).

One step works on a batch ``x`` (N, D) with the hidden state ``prev_h``, ``prev_c`` (N, H).  The weights are fused:
``Wx`` (D, 4H), ``Wh`` (H, 4H), ``b`` (4H,), and ``a = x @ Wx + prev_h @ Wh + b`` (N, 4H) is split into the blocks
i, f, o, g in that order.  The whole-sequence functions take ``x`` (N, T, D) and start from c0 = 0.  The cache is a
plain tuple, as people write it.  Only NumPy is needed, and float32 inputs stay float32.
"""

from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor warns for large |z|; keeps z's dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def lstm_step_forward(x: np.ndarray, prev_h: np.ndarray, prev_c: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                      b: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One step forward: returns (next_h, next_c, cache)."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, b, i, f, o, g, tanh_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h: np.ndarray, dnext_c: np.ndarray, cache: tuple[np.ndarray, ...]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step backward: returns (dx, dprev_h, dprev_c, dWx, dWh, db); dW* and db are this step's part."""
    x, prev_h, prev_c, Wx, Wh, b, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)  # (N, H)
    di = dc * g * i * (1 - i)
    df = dc * prev_c * f * (1 - f)
    do = dnext_h * tanh_c * o * (1 - o)
    dg = dc * i * (1 - g**2)
    da = np.concatenate([di, df, do, dg], axis=1)  # (N, 4H), the blocks of a
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dc * f, dWx, dWh, db


def lstm_forward(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
                 ) -> tuple[np.ndarray, list[tuple[np.ndarray, ...]]]:
    """Run the sequence x (N, T, D) from h0 and c0 = 0: returns (h (N, T, H), cache)."""
    h_t, c_t = h0, np.zeros_like(h0)
    hs, caches = [], []
    for t in range(x.shape[1]):
        h_t, c_t, cache_t = lstm_step_forward(x[:, t, :], h_t, c_t, Wx, Wh, b)
        hs.append(h_t)
        caches.append(cache_t)
    return np.stack(hs, axis=1), caches


def lstm_backward(dh: np.ndarray, cache: list[tuple[np.ndarray, ...]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward through the sequence; dh (N, T, H) holds the gradients from outside. Returns (dx, dh0, dWx, dWh, db)."""
    _, _, _, Wx, Wh, b = cache[0][:6]
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(dh[:, 0, :])
    dprev_c = np.zeros_like(dprev_h)
    dxs: list[Any] = [None] * dh.shape[1]
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dh[:, t, :] + dprev_h, dprev_c, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db
