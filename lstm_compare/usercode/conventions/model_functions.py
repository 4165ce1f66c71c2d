"""A file's own whole-model functions, for model variants (``references/model.py``) in the question's convention:

    lstm_model_loss(params, h0, c0, inputs, targets) -> (outputs, loss, hs, cs, caches)
    dlstm_model_loss(params, inputs, targets, outputs, caches) -> (dparams, dinputs, dh0, dc0)

``params`` is the model's flat dict (``Wf_l1`` ... ``Wf_l1_reverse`` ..., ``Wy``, ``by``; layers counted from 1),
or, when the file sets ``MODEL_PARAMS = "layers"``, ``{"layers": [one dict per layer], "Wy": ..., "by": ...}``
whose per-layer dicts hold ``Wf`` ... and the reverse direction's ``Wf_reverse`` ...; ``dparams`` comes back in
the same shape.  h0 (L D, [B,] S) and c0 (L D, [B,] H) are stacked in slot order (layer 1 forward, layer 1
reverse, layer 2 ...), like torch's.  ``hs`` (L, T, [B,] D S) is each layer's output sequence in time order as the
next layer reads it (the reverse direction's half aligned in time), ``cs`` (L, T, [B,] D H) the cell states
arranged the same way; both are compared per slot and step, which is where wiring bugs show.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import defines, gradient_array, require
from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.usercode.guard import as_float_array, unpack
from lstm_compare.lstm.model import Model, ModelProblem, Slot, slot_index

if TYPE_CHECKING:
    from lstm_compare.usercode.conventions.base import Binding

FUNCTIONS = (("lstm_model_loss", "lstm_model_loss(params, h0, c0, inputs, targets)"),
             ("dlstm_model_loss", "dlstm_model_loss(params, inputs, targets, outputs, caches)"))
LAYERS = "layers"  # MODEL_PARAMS = "layers": parameters as a list of per-layer dicts
REVERSE = "_reverse"


@dataclass(frozen=True)
class ModelSequenceRun:
    """What the whole-model functions returned, in internal names, each slot's per-step tensors in its processing
    order; ``failure`` is the exception that stopped them, if any."""

    forward: dict[Slot, dict[str, np.ndarray]]  # slot -> {"h": (T, [B,] S), "c": (T, [B,] H)}
    model_forward: dict[str, Any]  # "y" (T, [B,] O), "loss" (a float)
    backward: dict[Slot, dict[str, np.ndarray]]  # slot -> {"dWf": ..., "dh0": ..., "dc0": ...}
    model_backward: dict[str, np.ndarray]  # "dWy", "dby", "dx" (T, [B,] X)
    failure: ImplementationRaised | None


def model_functions(binding: "Binding") -> "ModelFunctions | None":
    """The binding's whole-model functions, or None when its file has none (or its convention cannot take them)."""
    if not binding.takes_variant_params or not defines(binding.module, [name for name, _ in FUNCTIONS]):
        return None
    return ModelFunctions(binding)


class ModelFunctions:
    """Calls a file's ``lstm_model_loss`` and ``dlstm_model_loss`` through its binding (copies in, time limits)."""

    def __init__(self, binding: "Binding") -> None:
        require(binding.module, binding.name, FUNCTIONS, binding.label or binding.convention)
        for attribute, _ in FUNCTIONS:
            setattr(binding, attribute, getattr(binding.module, attribute))
        self.binding = binding
        shape = getattr(binding.module, "MODEL_PARAMS", "flat")
        if shape not in ("flat", LAYERS):
            raise UsageError(f"{binding.name}: MODEL_PARAMS must be 'flat' or 'layers', not {shape!r}.")
        self.layers = shape == LAYERS

    def run(self, problem: ModelProblem) -> ModelSequenceRun:
        model, T = problem.model, problem.steps
        lead = problem.inputs.shape[1:-1]
        params = to_layers(model, problem.params) if self.layers else dict(problem.params)
        args = (params, problem.h0, problem.c0, problem.inputs, problem.targets)
        try:
            result = self.binding.call("lstm_model_loss", args, "forward", None)
        except ImplementationRaised as raised:
            return ModelSequenceRun({}, {}, {}, {}, raised)
        outputs, loss, hs, cs, caches = unpack(result, 5, "lstm_model_loss")
        O, S, H, D = problem.targets.shape[-1], problem.h0.shape[-1], problem.hidden, len(model.directions)
        what = "returned by lstm_model_loss"
        y = as_float_array(outputs, (T, *lead, O), f"outputs {what}")
        if np.size(loss) != 1:
            raise UsageError(f"the loss {what} must be one number (summed over steps and batch), not an array of "
                             f"shape {np.shape(loss)}.")
        loss = float(as_float_array(loss, np.shape(loss), f"the loss {what}").sum())
        hs = as_float_array(hs, (model.layers, T, *lead, D * S), f"hs {what} (one output sequence per layer)")
        cs = as_float_array(cs, (model.layers, T, *lead, D * H), f"cs {what} (one cell-state sequence per layer)")
        forward = {slot: {"c": _slot_sequence(cs, slot, H), "h": _slot_sequence(hs, slot, S)} for slot in model.slots()}
        model_forward: dict[str, Any] = {"y": y, "loss": loss}
        try:
            back = self.binding.call("dlstm_model_loss", (params, problem.inputs, problem.targets, y, caches),
                                     "backward", None)
        except ImplementationRaised as raised:
            return ModelSequenceRun(forward, model_forward, {}, {}, raised)
        what = "returned by dlstm_model_loss"
        dparams, dinputs, dh0, dc0 = unpack(back, 4, "dlstm_model_loss")
        flat = from_layers(model, dparams, f"dparams {what}") if self.layers else dparams
        grads = model_grads(model, flat, problem.params, f"dparams {what}")
        dh0 = as_float_array(dh0, problem.h0.shape, f"dh0 {what}")
        dc0 = as_float_array(dc0, problem.c0.shape, f"dc0 {what}")
        backward = {slot: {**{f"d{name}": grads[name + slot.suffix] for name in model.cell_params()},
                           "dh0": dh0[slot_index(model, slot)], "dc0": dc0[slot_index(model, slot)]}
                    for slot in model.slots()}
        model_backward = {"dWy": grads["Wy"], "dby": grads["by"],
                          "dx": as_float_array(dinputs, problem.inputs.shape, f"dinputs {what}")}
        return ModelSequenceRun(forward, model_forward, backward, model_backward, None)


def _slot_sequence(values: np.ndarray, slot: Slot, size: int) -> np.ndarray:
    """One slot's (T, [B,] n) part of a layer's time-ordered outputs, in the slot's processing order."""
    part = values[slot.layer - 1][..., slot.reverse * size:][..., :size]
    return part[::-1] if slot.reverse else part


def model_grads(model: Model, dparams: Any, params: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """The user's flat ``dparams`` checked: a dict with every parameter of the model, nothing else, right shapes."""
    if not isinstance(dparams, dict):
        raise UsageError(f"{what} is a {type(dparams).__name__}; a dict keyed like the parameters is required.")
    unknown = sorted(set(dparams) - set(params), key=str)
    if unknown:
        raise UsageError(f"{what} has an entry {unknown[0]!r} that is not a parameter of this model "
                         f"({model.describe()}).")
    missing = [name for name in params if name not in dparams]
    if missing:
        raise UsageError(f"{what} has no entry {missing[0]!r}.")
    return {name: gradient_array(dparams[name], value.shape, f"{what}[{name!r}]") for name, value in params.items()}


def to_layers(model: Model, params: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The flat dict as {"layers": [per-layer dicts, the reverse direction's names ending in _reverse], Wy, by}."""
    layers = [{name + (REVERSE if slot.reverse else ""): params[name + slot.suffix]
               for slot in model.slots() if slot.layer == layer for name in model.cell_params()}
              for layer in range(1, model.layers + 1)]
    return {LAYERS: layers, "Wy": params["Wy"], "by": params["by"]}


def from_layers(model: Model, value: Any, what: str) -> dict[str, Any]:
    """The flat dict from the per-layer shape (``to_layers``), checked for its structure."""
    if not isinstance(value, dict) or not isinstance(value.get(LAYERS), (list, tuple)):
        raise UsageError(f"{what} must be a dict with a list under 'layers' (MODEL_PARAMS = 'layers').")
    if len(value[LAYERS]) != model.layers:
        raise UsageError(f"{what} has {len(value[LAYERS])} layers under 'layers', not {model.layers}.")
    flat = {key: item for key, item in value.items() if key != LAYERS}
    for layer, entries in enumerate(value[LAYERS], start=1):
        if not isinstance(entries, dict):
            raise UsageError(f"{what}['layers'][{layer - 1}] is a {type(entries).__name__}, not a dict.")
        for key, item in entries.items():
            reverse = isinstance(key, str) and key.endswith(REVERSE)
            base = key.removesuffix(REVERSE) if reverse else key
            flat[f"{base}{Slot(layer, 'reverse' if reverse else 'forward').suffix}"] = item
    return flat
