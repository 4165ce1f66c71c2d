"""The one definition of the weight layouts and their conversions.

Seed dict (``xh @ W`` on ``xh = [x, h_prev]``)      torch.nn.LSTM + nn.Linear state_dict
  Wf, Wi, Wg, Wo   (X+H, H), one per gate      ->  weight_ih_l0 (4H, X) = [Wi; Wf; Wg; Wo][:X].T stacked
                                               ->  weight_hh_l0 (4H, H) = [Wi; Wf; Wg; Wo][X:].T stacked
  bf, bi, bg, bo   (H,)                        ->  bias_ih_l0 (4H,) = [bi, bf, bg, bo];  bias_hh_l0 = 0
  Wy (H, O), by (O,)                           ->  head.weight (O, H) = Wy.T,  head.bias (O,) = by

torch stacks its gates in the order i, f, g, o and adds two biases; going back, the seed bias is their sum.
"""

from typing import Mapping

import numpy as np

from references.cell import PARAM_NAMES

TORCH_GATES = ("i", "f", "g", "o")
TORCH_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")


def sizes(params: Mapping[str, np.ndarray]) -> tuple[int, int, int]:
    """(X, H, O) of a seed-convention parameter dict."""
    H, O = params["Wy"].shape
    return params["Wf"].shape[0] - H, H, O


def seed_to_torch(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seed dict -> torch state_dict layout (NumPy arrays, same dtype)."""
    X, H, _ = sizes(params)
    stacked = np.concatenate([params[f"W{gate}"] for gate in TORCH_GATES], axis=1)  # (X+H, 4H)
    bias = np.concatenate([params[f"b{gate}"] for gate in TORCH_GATES])  # (4H,)
    return {
        "weight_ih_l0": np.array(stacked[:X].T, order="C"),  # (4H, X)
        "weight_hh_l0": np.array(stacked[X:].T, order="C"),  # (4H, H)
        "bias_ih_l0": bias,
        "bias_hh_l0": np.zeros_like(bias),
        "head.weight": np.array(params["Wy"].T, order="C"),  # (O, H)
        "head.bias": params["by"].copy(),
    }


def torch_to_seed(state: Mapping[str, np.ndarray], *, gradient: bool = False) -> dict[str, np.ndarray]:
    """torch state_dict layout -> seed dict.

    For weights the seed bias is ``bias_ih + bias_hh``.  For *gradients* (``gradient=True``) both torch bias
    gradients equal dL/db, so the seed bias gradient is ``bias_ih``'s alone.
    """
    stacked = np.concatenate([state["weight_ih_l0"], state["weight_hh_l0"]], axis=1).T  # (X+H, 4H)
    bias = state["bias_ih_l0"] if gradient else state["bias_ih_l0"] + state["bias_hh_l0"]
    H = stacked.shape[1] // 4
    params = {}
    for k, gate in enumerate(TORCH_GATES):
        params[f"W{gate}"] = np.array(stacked[:, k * H:(k + 1) * H], order="C")
        params[f"b{gate}"] = bias[k * H:(k + 1) * H].copy()
    params["Wy"] = np.array(state["head.weight"].T, order="C")
    params["by"] = state["head.bias"].copy()
    return {name: params[name] for name in PARAM_NAMES}
