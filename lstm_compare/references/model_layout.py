"""A model's weight layouts (``references/model.py``): its flat internal dict <-> torch.nn.LSTM's state_dict, and
<-> the parameter tree of flax's ``LSTMCell``s.  Each cell's part is ``references/layout.py``'s, per slot.

Internal dict, slot suffix ``_l{k}[_reverse]`` (k 1-based)  torch nn.LSTM(num_layers, bidirectional, proj_size)
  Wf_l{k} ... Wo_l{k}  (In + S, H)               ->  weight_ih_l{k-1} (4H, In), weight_hh_l{k-1} (4H, S)
  bf_l{k} ... bo_l{k}  (H,)                      ->  bias_ih_l{k-1} (4H,) in i, f, g, o order; bias_hh_l{k-1} = 0
  Wr_l{k}  (H, P)                                ->  weight_hr_l{k-1} (P, H) = Wr.T
  pf_l{k}, pi_l{k}, po_l{k}  (H,)                ->  no key: torch.nn.LSTM has no peepholes
  ..._l{k}_reverse                               ->  ..._l{k-1}_reverse
  Wy (D S, O), by (O,)                           ->  head.weight (O, D S) = Wy.T,  head.bias (O,)

Internal dict                                           flax.linen: LSTMCell per slot, Dense head (no peepholes, P = 0)
  Wk_l{k}[:In]  for k in f, i, g, o              ->  cell_l{k}/i{k}/kernel (In, H)   (no bias)
  Wk_l{k}[In:]                                   ->  cell_l{k}/h{k}/kernel (H, H)
  bk_l{k}                                        ->  cell_l{k}/h{k}/bias (H,)
  Wy, by                                         ->  head/kernel (D H, O), head/bias (O,)

In is X for layer 1 and D S above it; S is P with a projection, H without; D is 1 or 2 directions.  Going back
from torch, a internal bias is ``bias_ih + bias_hh`` for weights, and ``bias_ih``'s alone for gradients (both of
torch's bias gradients are dL/db).  flax has one bias per gate, so its weights and gradients map alike.
"""

from typing import Any, Mapping

import numpy as np

from lstm_compare.lstm.cell import GATE_BIASES, GATE_WEIGHTS, GATES, PEEPHOLES
from lstm_compare.references.layout import cell_to_torch, torch_cell_keys, torch_to_cell
from lstm_compare.lstm.model import Model, Slot, slot_params

HEAD_KEYS = ("head.weight", "head.bias")
FLAX_CELL = "cell"  # the flax module name of a slot's LSTMCell: "cell_l1", "cell_l1_reverse"
FLAX_HEAD = "head"
# {"cell_l1": {"if": {"kernel": array}, "hf": {"kernel": ..., "bias": ...}, ...}, "head": {"kernel": ..., "bias": ...}}
FlaxTree = dict[str, dict[str, Any]]


class NoEquivalent(ValueError):
    """The model has parameters the target layout has no key for (the message is one sentence)."""


def torch_suffix(slot: Slot) -> str:
    """The torch key suffix of a slot: '_l0' for layer 1 forward, '_l1_reverse' for layer 2 backward."""
    return f"_l{slot.layer - 1}" + ("_reverse" if slot.reverse else "")


def torch_keys(model: Model) -> tuple[str, ...]:
    """The keys of ``nn.LSTM(num_layers, bidirectional, proj_size)``'s state_dict, in its own order."""
    return tuple(key for slot in model.slots() for key in torch_cell_keys(torch_suffix(slot), bool(model.proj)))


def _refuse_peepholes(model: Model, target: str) -> None:
    if model.peepholes:
        raise NoEquivalent(f"peephole parameters (pf, pi, po) have no {target} key: {target}'s LSTM has no "
                           f"peepholes.")


def slot_to_torch(model: Model, params: Mapping[str, np.ndarray], slot: Slot) -> dict[str, np.ndarray]:
    """One slot's cell in torch's layout (peepholes, which torch lacks, are left out: the twin reads them as is)."""
    cell = {name: value for name, value in slot_params(model, params, slot).items() if name not in PEEPHOLES}
    return cell_to_torch(cell, torch_suffix(slot))


def model_to_torch(model: Model, params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's flat internal dict -> nn.LSTM's state_dict plus ``head.weight``, ``head.bias``."""
    _refuse_peepholes(model, "torch")
    state = {key: value for slot in model.slots() for key, value in slot_to_torch(model, params, slot).items()}
    state["head.weight"] = np.array(params["Wy"].T, order="C")  # (O, D S)
    state["head.bias"] = params["by"].copy()
    return {key: state[key] for key in (*torch_keys(model), *HEAD_KEYS)}


def torch_to_model(model: Model, state: Mapping[str, np.ndarray], *, gradient: bool = False
                   ) -> dict[str, np.ndarray]:
    """nn.LSTM's state_dict plus the head's keys -> the model's flat internal dict (``gradient``: see the module)."""
    _refuse_peepholes(model, "torch")
    params = {}
    for slot in model.slots():
        cell = torch_to_cell(state, torch_suffix(slot), gradient=gradient)
        params.update({name + slot.suffix: value for name, value in cell.items()})
    params["Wy"] = np.array(state["head.weight"].T, order="C")
    params["by"] = state["head.bias"].copy()
    return {name: params[name] for name in model.param_names()}


def _check_flax(model: Model) -> None:
    _refuse_peepholes(model, "flax")
    if model.proj:
        raise NoEquivalent("a projection (Wr) has no flax key: flax's LSTMCell has no proj_size.")


def model_to_flax(model: Model, params: Mapping[str, np.ndarray]) -> FlaxTree:
    """The model's flat internal dict -> the flax parameter tree (the ``params`` collection's contents)."""
    _check_flax(model)
    tree: FlaxTree = {}
    for slot in model.slots():
        cell = slot_params(model, params, slot)
        In = cell["Wf"].shape[0] - cell["Wf"].shape[1]
        tree[FLAX_CELL + slot.suffix] = {
            **{f"i{gate}": {"kernel": np.array(cell[f"W{gate}"][:In], order="C")} for gate in GATES},
            **{f"h{gate}": {"kernel": np.array(cell[f"W{gate}"][In:], order="C"), "bias": cell[f"b{gate}"].copy()}
               for gate in GATES},
        }
    tree[FLAX_HEAD] = {"kernel": params["Wy"].copy(), "bias": params["by"].copy()}
    return tree


def flax_to_model(model: Model, tree: Mapping[str, Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The flax parameter tree (weights or gradients alike) -> the model's flat internal dict."""
    _check_flax(model)
    params = {}
    for slot in model.slots():
        cell = tree[FLAX_CELL + slot.suffix]
        for gate, weight, bias in zip(GATES, GATE_WEIGHTS, GATE_BIASES):
            params[weight + slot.suffix] = np.concatenate([cell[f"i{gate}"]["kernel"], cell[f"h{gate}"]["kernel"]])
            params[bias + slot.suffix] = np.array(cell[f"h{gate}"]["bias"])
    params["Wy"] = np.array(tree[FLAX_HEAD]["kernel"])
    params["by"] = np.array(tree[FLAX_HEAD]["bias"])
    return {name: params[name] for name in model.param_names()}
