"""PyTorch reference for a model (``references/model.py``): the official ``torch.nn.LSTM(num_layers, bidirectional,
proj_size)`` for totals, and an instrumented twin in torch ops for every slot's per-step tensors.

torch has no peepholes: for a peephole model the twin is the whole reference, totals included, and the JAX scan
is the other, independent one.
"""

import warnings
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from lstm_compare.lstm.model import Model, ModelProblem, ModelTotals, ModelTrace, Slot, SlotTrace, slot_index
from lstm_compare.references.model_layout import HEAD_KEYS, model_to_torch, slot_to_torch, torch_keys, torch_suffix, \
    torch_to_model
from lstm_compare.lstm.records import grads_entering_later_steps
from lstm_compare.references.torch_lstm import _mse, _numpy, _reference_mode, _tensor

NAME = "torch"
FORWARD = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "m", "h", "h_prev", "c_prev")
# Per step, the tensors whose gradient is a per-step record: each pre-activation, the state entering the step,
# h_t itself (the whole dL/dh_t), the copy of h_t that the head or the layer above reads (dh_out), and the
# slot's own copy of its input x_t (dx).
PROBES = ("f_pre", "i_pre", "g_pre", "o_pre", "h_prev", "c_prev", "h", "h_out", "x")


def _torch_dtype(problem: ModelProblem) -> torch.dtype:
    return torch.float64 if problem.dtype == np.float64 else torch.float32


def official_model(problem: ModelProblem) -> ModelTotals:
    """Totals from ``torch.nn.LSTM`` + ``nn.Linear`` loaded through ``load_state_dict``: the authority.

    A peephole model has no official: ``model_layout.NoEquivalent`` (a ValueError) says so.
    """
    with _reference_mode():
        return _official(problem)


def _official(problem: ModelProblem) -> ModelTotals:
    model, H = problem.model, problem.hidden
    X, O = problem.inputs.shape[-1], problem.targets.shape[-1]
    dtype = _torch_dtype(problem)
    state = {k: torch.tensor(v) for k, v in model_to_torch(model, problem.params).items()}
    lstm = torch.nn.LSTM(X, H, num_layers=model.layers, bidirectional=model.bidirectional, proj_size=model.proj,
                         dtype=dtype)
    head = torch.nn.Linear(model.output_size(H), O, dtype=dtype)
    lstm.load_state_dict({k: state[k] for k in torch_keys(model)})
    head.load_state_dict({"weight": state["head.weight"], "bias": state["head.bias"]})
    x, h0, c0 = _tensor(problem.inputs), _tensor(problem.h0), _tensor(problem.c0)
    with warnings.catch_warnings():  # float32 with a projection: "not supported with oneDNN", torch's own fallback
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        out, (h_last, c_last) = lstm(x, (h0, c0))  # out (T, [B,] D S)
    y = head(out)  # (T, [B,] O)
    loss = _mse(y, torch.from_numpy(problem.targets))
    loss.backward()
    grad_state = {k: _numpy(getattr(lstm, k).grad) for k in torch_keys(model)}
    grad_state.update({key: _numpy(getattr(head, key[5:]).grad) for key in HEAD_KEYS})
    return ModelTotals(loss=loss.item(), outputs=_numpy(y), h_last=_numpy(h_last), c_last=_numpy(c_last),
                       grads=torch_to_model(model, grad_state, gradient=True), dinputs=_numpy(x.grad),  # type: ignore
                       dh0=_numpy(h0.grad), dc0=_numpy(c0.grad))  # type: ignore[arg-type]


def trace_model(problem: ModelProblem) -> ModelTrace:
    """Every slot's per-step tensors from the twin; totals from ``official_model`` (the twin's for peepholes)."""
    with _reference_mode():
        slots, totals = _twin(problem)
        if not problem.model.peepholes:
            totals = _official(problem)
    return ModelTrace(NAME, problem.model, slots, totals)


def twin_model(problem: ModelProblem) -> ModelTrace:
    """The twin alone, its own totals included (tests hold them against the official)."""
    with _reference_mode():
        slots, totals = _twin(problem)
    return ModelTrace(NAME, problem.model, slots, totals)


@dataclass
class _SlotRun:
    """One slot's per-step tensors (lists over its processing order) while the graph is alive."""

    slot: Slot
    steps: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def outputs(self) -> torch.Tensor:
        """h_t as the head or the layer above reads it, in time order (T, [B,] S)."""
        h = torch.stack([step["h_out"] for step in self.steps])
        return h.flip(0) if self.slot.reverse else h


def _twin(problem: ModelProblem) -> tuple[dict[Slot, SlotTrace], ModelTotals]:
    """The model in torch ops, slot by slot, with one ``torch.autograd.grad`` over parameters and probes."""
    model = problem.model
    leaves = {k: _tensor(v) for k, v in _twin_params(problem).items()}
    x, h0, c0 = _tensor(problem.inputs), _tensor(problem.h0), _tensor(problem.c0)
    runs, finals, layer_input = [], [], x
    for layer in range(1, model.layers + 1):
        outputs = []
        for slot in (s for s in model.slots() if s.layer == layer):
            k = slot_index(model, slot)
            run, h, c = _run_slot(model, leaves, slot, layer_input, h0[k], c0[k])
            runs.append(run)
            finals.append((h, c))
            outputs.append(run.outputs())
        layer_input = torch.cat(outputs, dim=-1)  # (T, [B,] D S): forward, then reverse, aligned in time
    y = layer_input @ leaves["head.weight"].T + leaves["head.bias"]  # (T, [B,] O)
    loss = _mse(y, torch.from_numpy(problem.targets))
    probes = [step[name] for run in runs for step in run.steps for name in PROBES]
    inputs = [*leaves.values(), x, h0, c0, *probes]
    grads = [_numpy(g) for g in torch.autograd.grad(loss, inputs)]
    n = len(leaves)
    dleaves = dict(zip(leaves, grads[:n]))
    dprobes = iter(grads[n + 3:])
    slots = {run.slot: _slot_trace(run, dprobes, model.proj > 0) for run in runs}
    totals = ModelTotals(loss=loss.item(), outputs=_numpy(y), h_last=np.stack([_numpy(h) for h, _ in finals]),
                         c_last=np.stack([_numpy(c) for _, c in finals]), grads=_internal_grads(model, dleaves),
                         dinputs=grads[n], dh0=grads[n + 1], dc0=grads[n + 2])
    return slots, totals


def _twin_params(problem: ModelProblem) -> dict[str, np.ndarray]:
    """Every slot's cell in torch's layout (one bias per gate: bias_hh is left out), peepholes as they are, head."""
    model, params = problem.model, problem.params
    state: dict[str, np.ndarray] = {}
    for slot in model.slots():
        cell = slot_to_torch(model, params, slot)
        state.update({key: value for key, value in cell.items() if not key.startswith("bias_hh")})
        if model.peepholes:
            state.update({f"p{gate}{slot.suffix}": params[f"p{gate}{slot.suffix}"] for gate in "fio"})
    state["head.weight"] = np.array(params["Wy"].T, order="C")
    state["head.bias"] = params["by"]
    return state


def _internal_grads(model: Model, dleaves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The twin's leaf gradients -> the model's internal layout (``bias_hh``'s gradient is ``bias_ih``'s)."""
    state = {**dleaves, **{key.replace("bias_ih", "bias_hh"): value for key, value in dleaves.items()
                           if key.startswith("bias_ih")}}
    peepholes = {key: state.pop(key) for key in list(state) if key[:2] in ("pf", "pi", "po")}
    grads = torch_to_model(Model(model.layers, model.bidirectional, model.proj), state, gradient=True)
    grads.update(peepholes)
    return {name: grads[name] for name in model.param_names()}


def _run_slot(model: Model, w: dict[str, torch.Tensor], slot: Slot, seq: torch.Tensor, h: torch.Tensor,
              c: torch.Tensor) -> tuple[_SlotRun, torch.Tensor, torch.Tensor]:
    """One cell over ``seq`` (T, [B,] In, time order) in the slot's processing order; returns the final h, c."""
    key = torch_suffix(slot)
    W_ih, W_hh, b = w[f"weight_ih{key}"], w[f"weight_hh{key}"], w[f"bias_ih{key}"]  # (4H, In), (4H, S), (4H,)
    run = _SlotRun(slot)
    times = range(seq.shape[0] - 1, -1, -1) if slot.reverse else range(seq.shape[0])
    for t in times:
        x = seq[t].clone()  # this slot's own copy of x_t: its gradient is the slot's dx
        h_prev, c_prev = h.clone(), c.clone()  # own nodes: their grads come through this step and later only
        gates = x @ W_ih.T + h_prev @ W_hh.T + b  # ([B,] 4H)
        i_pre, f_pre, g_pre, o_pre = gates.chunk(4, dim=-1)  # torch's gate order
        if model.peepholes:
            f_pre = f_pre + w[f"pf{slot.suffix}"] * c_prev
            i_pre = i_pre + w[f"pi{slot.suffix}"] * c_prev
        f, i, g = torch.sigmoid(f_pre), torch.sigmoid(i_pre), torch.tanh(g_pre)
        c = f * c_prev + i * g
        if model.peepholes:
            o_pre = o_pre + w[f"po{slot.suffix}"] * c  # the output gate peeks at this step's c
        o = torch.sigmoid(o_pre)
        c_tanh = torch.tanh(c)
        m = o * c_tanh
        h = m @ w[f"weight_hr{key}"].T if model.proj else m  # ([B,] S)
        run.steps.append(dict(f_pre=f_pre, i_pre=i_pre, g_pre=g_pre, o_pre=o_pre, f=f, i=i, g=g, o=o, c=c,
                              c_tanh=c_tanh, m=m, h=h, h_out=h.clone(), h_prev=h_prev, c_prev=c_prev, x=x))
    return run, h, c


def _slot_trace(run: _SlotRun, dprobes: Iterator[np.ndarray], projected: bool) -> SlotTrace:
    """The slot's records, reading its probes' gradients off ``dprobes`` in the order they were listed."""
    d: dict[str, list[np.ndarray]] = {name: [] for name in PROBES}
    for _ in run.steps:
        for name in PROBES:
            d[name].append(next(dprobes))
    names = [name for name in FORWARD if projected or name != "m"]
    forward = {name: np.stack([_numpy(step[name]) for step in run.steps]) for name in names}
    stacked = {name: np.stack(values) for name, values in d.items()}
    backward = {"dh_out": stacked["h_out"], "dh": stacked["h"],
                **{f"d{gate}_pre": stacked[f"{gate}_pre"] for gate in "figo"},
                "dh_prev": stacked["h_prev"], "dc_prev": stacked["c_prev"],
                "dh_next": grads_entering_later_steps(stacked["h_prev"]),
                "dc_next": grads_entering_later_steps(stacked["c_prev"]), "dx": stacked["x"]}
    inputs = np.stack([_numpy(step["x"]) for step in run.steps])
    return SlotTrace(run.slot, inputs, forward, backward)
