"""A hand-written LSTM in NumPy, in the convention of deeplearning.ai's "Building your Recurrent Neural Network -
Step by Step" (Sequence Models, week 1).

Column vectors: one step takes ``xt`` (n_x, m) and ``a_prev``, ``c_prev`` (n_a, m), with m examples side by side.
Each gate has its own matrix acting from the left on ``concat = [a_prev; xt]`` (n_a + n_x, m): ``Wf, Wi, Wc, Wo``
(n_a, n_a + n_x) and biases ``bf, bi, bc, bo`` (n_a, 1); ``c`` names the candidate gate.  The output is
``yt_pred = softmax(Wy @ a_next + by)`` over axis 0.  ``lstm_forward`` starts from c0 = 0.  Only NumPy is needed,
and float32 inputs stay float32.
"""

from typing import Any

import numpy as np

GATE_PARAMS = ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor warns for large |z|; keeps z's dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over axis 0 (the classes of each column), shifted by each column's maximum."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def lstm_cell_forward(xt: np.ndarray, a_prev: np.ndarray, c_prev: np.ndarray, parameters: dict[str, np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[Any, ...]]:
    """One step forward: returns (a_next, c_next, yt_pred, cache)."""
    p = parameters
    concat = np.concatenate([a_prev, xt], axis=0)  # (n_a + n_x, m)
    ft = sigmoid(p["Wf"] @ concat + p["bf"])  # (n_a, m)
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    c_next = ft * c_prev + it * cct
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(p["Wy"] @ a_next + p["by"])  # (n_y, m)
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    return a_next, c_next, yt_pred, cache


def lstm_cell_backward(da_next: np.ndarray, dc_next: np.ndarray, cache: tuple[Any, ...]) -> dict[str, np.ndarray]:
    """One step backward: returns the gradients dict (dxt, da_prev, dc_prev and this step's dWf ... dbo)."""
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    p = parameters
    n_a = a_next.shape[0]
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1 - tanh_c**2)  # (n_a, m)
    dft = dc * c_prev * ft * (1 - ft)
    dit = dc * cct * it * (1 - it)
    dcct = dc * it * (1 - cct**2)
    dot = da_next * tanh_c * ot * (1 - ot)
    concat = np.concatenate([a_prev, xt], axis=0)
    dconcat = p["Wf"].T @ dft + p["Wi"].T @ dit + p["Wc"].T @ dcct + p["Wo"].T @ dot  # (n_a + n_x, m)
    return {
        "dxt": dconcat[n_a:], "da_prev": dconcat[:n_a], "dc_prev": dc * ft,
        "dWf": dft @ concat.T, "dWi": dit @ concat.T, "dWc": dcct @ concat.T, "dWo": dot @ concat.T,
        "dbf": dft.sum(axis=1, keepdims=True), "dbi": dit.sum(axis=1, keepdims=True),
        "dbc": dcct.sum(axis=1, keepdims=True), "dbo": dot.sum(axis=1, keepdims=True),
    }


def lstm_forward(x: np.ndarray, a0: np.ndarray, parameters: dict[str, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[list[tuple[Any, ...]], np.ndarray]]:
    """Run the sequence x (n_x, m, T_x) from a0 and c0 = 0: returns (a, y, c, caches), caches = (list, x)."""
    a_t, c_t = a0, np.zeros_like(a0)
    a, y, c, caches = [], [], [], []
    for t in range(x.shape[2]):
        a_t, c_t, yt, cache = lstm_cell_forward(x[:, :, t], a_t, c_t, parameters)
        a.append(a_t)
        y.append(yt)
        c.append(c_t)
        caches.append(cache)
    return np.stack(a, axis=2), np.stack(y, axis=2), np.stack(c, axis=2), (caches, x)


def lstm_backward(da: np.ndarray, caches: tuple[Any, ...]) -> dict[str, np.ndarray]:
    """Backward through the sequence; da (n_a, m, T_x) holds the gradients from the outputs only.

    Returns the gradients dict: dx (n_x, m, T_x), da0 and the summed dWf ... dbo.
    """
    caches, x = caches
    parameters = caches[0][9]
    sums = {"d" + name: np.zeros_like(parameters[name]) for name in GATE_PARAMS}
    da_prevt = np.zeros_like(da[:, :, 0])
    dc_prevt = np.zeros_like(da_prevt)
    dxs: list[Any] = [None] * da.shape[2]
    for t in reversed(range(da.shape[2])):
        step = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])
        dxs[t], da_prevt, dc_prevt = step["dxt"], step["da_prev"], step["dc_prev"]
        for name in sums:
            sums[name] += step[name]
    return {"dx": np.stack(dxs, axis=2), "da0": da_prevt, **sums}
