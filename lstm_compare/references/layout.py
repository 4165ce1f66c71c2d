"""The one definition of the weight layouts and their conversions.

Internal dict (``xh @ W`` on ``xh = [x, h_prev]``)      torch.nn.LSTM + nn.Linear state_dict
  Wf, Wi, Wg, Wo   (X+H, H), one per gate      ->  weight_ih_l0 (4H, X) = [Wi; Wf; Wg; Wo][:X].T stacked
                                               ->  weight_hh_l0 (4H, H) = [Wi; Wf; Wg; Wo][X:].T stacked
  bf, bi, bg, bo   (H,)                        ->  bias_ih_l0 (4H,) = [bi, bf, bg, bo];  bias_hh_l0 = 0
  Wy (H, O), by (O,)                           ->  head.weight (O, H) = Wy.T,  head.bias (O,) = by

torch stacks its gates in the order i, f, g, o and adds two biases; going back, the internal bias is their sum.
The cell part alone (``cell_to_torch``, ``torch_to_cell``) takes any torch key suffix (``_l1_reverse``) and a
projected cell's ``Wr`` (H, P) <-> ``weight_hr`` (P, H) = Wr.T, where h_prev, and so weight_hh, has P entries;
``references/model_layout.py`` builds a whole model's layout from it.
"""

from typing import Mapping

import numpy as np

from lstm_compare.lstm.cell import GATE_BIASES, GATE_WEIGHTS, PARAM_NAMES, PROJECTION

TORCH_GATES = ("i", "f", "g", "o")
TORCH_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")
TORCH_CELL_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # then weight_hr in a projected cell


def sizes(params: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    """(X, H, O) of a parameter dict in the internal layout (the question's)."""
    H, O = params["Wy"].shape
    return params["Wf"].shape[0] - H, H, O


def torch_cell_keys(suffix: str = "_l0", projected: bool = False) -> tuple[str, ...]:
    """One cell's torch keys in nn.LSTM's order: weight_ih{suffix}, ..., bias_hh{suffix}[, weight_hr{suffix}]."""
    return tuple(key + suffix for key in (*TORCH_CELL_KEYS, *(("weight_hr",) if projected else ())))


def cell_to_torch(params: Mapping[str, np.ndarray], suffix: str = "_l0") -> dict[str, np.ndarray]:
    """One cell's internal parameters (Wf ... bo, and Wr if projected) -> its torch keys with ``suffix``.

    Other entries (a head, peepholes) are not read.  The size of h_prev is P (Wr's columns) or H.
    """
    S = params[PROJECTION].shape[1] if PROJECTION in params else params["Wf"].shape[1]
    In = params["Wf"].shape[0] - S
    stacked = np.concatenate([params[f"W{gate}"] for gate in TORCH_GATES], axis=1)  # (In+S, 4H)
    bias = np.concatenate([params[f"b{gate}"] for gate in TORCH_GATES])  # (4H,)
    state = {
        f"weight_ih{suffix}": np.array(stacked[:In].T, order="C"),  # (4H, In)
        f"weight_hh{suffix}": np.array(stacked[In:].T, order="C"),  # (4H, S)
        f"bias_ih{suffix}": bias,
        f"bias_hh{suffix}": np.zeros_like(bias),
    }
    if PROJECTION in params:
        state[f"weight_hr{suffix}"] = np.array(params[PROJECTION].T, order="C")  # (P, H)
    return state


def torch_to_cell(state: Mapping[str, np.ndarray], suffix: str = "_l0", *,
                  gradient: bool = False) -> dict[str, np.ndarray]:
    """One cell's torch keys with ``suffix`` -> its internal parameters (Wf ... Wo, bf ... bo, and Wr if present).

    For weights the internal bias is ``bias_ih + bias_hh``; for gradients (``gradient=True``) it is ``bias_ih``'s
    alone (torch's two bias gradients are both dL/db).
    """
    stacked = np.concatenate([state[f"weight_ih{suffix}"], state[f"weight_hh{suffix}"]], axis=1).T  # (In+S, 4H)
    bias_ih = state[f"bias_ih{suffix}"]
    bias = bias_ih if gradient else bias_ih + state[f"bias_hh{suffix}"]
    H = stacked.shape[1] // 4
    params = {}
    for k, gate in enumerate(TORCH_GATES):
        params[f"W{gate}"] = np.array(stacked[:, k * H:(k + 1) * H], order="C")
        params[f"b{gate}"] = bias[k * H:(k + 1) * H].copy()
    names = [*GATE_WEIGHTS, *GATE_BIASES]
    if f"weight_hr{suffix}" in state:
        params[PROJECTION] = np.array(state[f"weight_hr{suffix}"].T, order="C")  # (H, P)
        names.append(PROJECTION)
    return {name: params[name] for name in names}


def internal_to_torch(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Internal dict -> torch state_dict layout (NumPy arrays, same dtype)."""
    return {
        **cell_to_torch({name: params[name] for name in (*GATE_WEIGHTS, *GATE_BIASES)}),
        "head.weight": np.array(params["Wy"].T, order="C"),  # (O, H)
        "head.bias": params["by"].copy(),
    }


def torch_to_internal(state: Mapping[str, np.ndarray], *, gradient: bool = False) -> dict[str, np.ndarray]:
    """torch state_dict layout -> internal dict.

    For weights the internal bias is ``bias_ih + bias_hh``.  For *gradients* (``gradient=True``) both torch bias
    gradients equal dL/db, so the internal bias gradient is ``bias_ih``'s alone.
    """
    params = torch_to_cell({key: state[key] for key in TORCH_KEYS[:4]}, gradient=gradient)
    params["Wy"] = np.array(state["head.weight"].T, order="C")
    params["by"] = state["head.bias"].copy()
    return {name: params[name] for name in PARAM_NAMES}
