"""A hand-written LSTM in NumPy, in the convention of Karpathy's batched-LSTM gist (``class LSTM``).

Whole sequences only: ``X`` (n, b, input_size), n steps of a batch of b.  One matrix ``WLSTM``
(1 + input_size + hidden_size, 4 * hidden_size) acts on ``Hin[t] = [1, x_t, h_{t-1}]`` (b, 1 + input_size + d), so
its row 0 is the bias; the columns are the blocks i, f, o, g.  ``forward`` starts from ``c0``, ``h0`` (zeros when
None) and ``backward`` takes ``dcn``, ``dhn``, the gradients reaching the last c and h from beyond the sequence.
Only NumPy is needed, and float32 inputs stay float32.
"""

from typing import Any

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function that neither overflows nor warns for large |z|; keeps z's dtype."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _blocks(gates: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four d-wide blocks i, f, o, g of a (b, 4d) array."""
    return gates[:, :d], gates[:, d:2 * d], gates[:, 2 * d:3 * d], gates[:, 3 * d:]


class LSTM:
    """The gist's static functions: ``init``, ``forward``, ``backward``."""

    @staticmethod
    def init(input_size: int, hidden_size: int, fancy_forget_bias_init: float = 3, *,
             rng: int | np.random.Generator | None = None) -> np.ndarray:
        """Xavier-scaled WLSTM with zero biases except the forget gate's; ``rng``: a seed or Generator."""
        rng = np.random.default_rng(rng)
        WLSTM = rng.standard_normal((1 + input_size + hidden_size, 4 * hidden_size)) / np.sqrt(input_size + hidden_size)
        WLSTM[0, :] = 0
        WLSTM[0, hidden_size:2 * hidden_size] = fancy_forget_bias_init
        return WLSTM

    @staticmethod
    def forward(X: np.ndarray, WLSTM: np.ndarray, c0: np.ndarray | None = None, h0: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Run X (n, b, input_size): returns (Hout (n, b, d), c_last, h_last, cache)."""
        n, b, input_size = X.shape
        d = WLSTM.shape[1] // 4
        dtype = np.result_type(X, WLSTM)
        c0 = np.zeros((b, d), dtype) if c0 is None else c0
        h0 = np.zeros((b, d), dtype) if h0 is None else h0
        Hin = np.empty((n, b, 1 + input_size + d), dtype)
        IFOG = np.empty((n, b, 4 * d), dtype)  # pre-activations
        IFOGf = np.empty((n, b, 4 * d), dtype)  # after the nonlinearities
        C = np.empty((n, b, d), dtype)
        Ct = np.empty((n, b, d), dtype)  # tanh(C)
        Hout = np.empty((n, b, d), dtype)
        prev_h, prev_c = h0, c0
        for t in range(n):
            Hin[t, :, 0] = 1
            Hin[t, :, 1:input_size + 1] = X[t]
            Hin[t, :, input_size + 1:] = prev_h
            IFOG[t] = Hin[t] @ WLSTM
            IFOGf[t, :, :3 * d] = sigmoid(IFOG[t, :, :3 * d])
            IFOGf[t, :, 3 * d:] = np.tanh(IFOG[t, :, 3 * d:])
            i, f, o, g = _blocks(IFOGf[t], d)
            C[t] = i * g + f * prev_c
            Ct[t] = np.tanh(C[t])
            Hout[t] = o * Ct[t]
            prev_h, prev_c = Hout[t], C[t]
        cache = {"WLSTM": WLSTM, "Hout": Hout, "IFOGf": IFOGf, "IFOG": IFOG, "C": C, "Ct": Ct, "Hin": Hin,
                 "c0": c0, "h0": h0}
        return Hout, C[n - 1], Hout[n - 1], cache

    @staticmethod
    def backward(dHout: np.ndarray, cache: dict[str, Any], dcn: np.ndarray | None = None, dhn: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Backward through the sequence: returns (dX, dWLSTM, dc0, dh0)."""
        WLSTM, IFOGf, C, Ct, Hin = cache["WLSTM"], cache["IFOGf"], cache["C"], cache["Ct"], cache["Hin"]
        n, b, d = C.shape
        input_size = WLSTM.shape[0] - d - 1
        dHout = dHout.copy()  # the carried dh is added into it: never into the caller's array
        dC = np.zeros_like(C)
        if dcn is not None:
            dC[n - 1] += dcn
        if dhn is not None:
            dHout[n - 1] += dhn
        dIFOG = np.empty_like(IFOGf)
        dWLSTM = np.zeros_like(WLSTM)
        dX = np.empty((n, b, input_size), dIFOG.dtype)
        for t in reversed(range(n)):
            i, f, o, g = _blocks(IFOGf[t], d)
            prev_c = C[t - 1] if t > 0 else cache["c0"]
            dC[t] += dHout[t] * o * (1 - Ct[t] ** 2)
            di = dC[t] * g * i * (1 - i)
            df = dC[t] * prev_c * f * (1 - f)
            do = dHout[t] * Ct[t] * o * (1 - o)
            dg = dC[t] * i * (1 - g**2)
            dIFOG[t] = np.concatenate([di, df, do, dg], axis=1)
            dWLSTM += Hin[t].T @ dIFOG[t]
            dHin = dIFOG[t] @ WLSTM.T  # (b, 1 + input_size + d)
            dX[t] = dHin[:, 1:input_size + 1]
            dprev_h = dHin[:, input_size + 1:]
            dprev_c = dC[t] * f
            if t > 0:
                dHout[t - 1] += dprev_h
                dC[t - 1] += dprev_c
        return dX, dWLSTM, dprev_c, dprev_h
