"""PyTorch reference: the official ``torch.nn.LSTM`` for totals, an instrumented per-step twin for the rest."""

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch

from lstm_compare.references.layout import internal_to_torch, torch_to_internal
from lstm_compare.references.memory import release_free_memory
from lstm_compare.lstm.records import FORWARD_TENSORS, Problem, Totals, Trace, grads_entering_later_steps

NAME = "torch"


def _tensor(array: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(np.asarray(array), requires_grad=grad)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().copy()


def _mse(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The question's convention's loss for one step: mean over outputs, summed over the batch."""
    return ((y - target) ** 2).mean(dim=-1).sum()


def official(problem: Problem) -> Totals:
    """Totals from ``torch.nn.LSTM`` + ``nn.Linear`` loaded through ``load_state_dict``: the authority."""
    with _reference_mode():
        return _official(problem)


def _official(problem: Problem) -> Totals:
    X, H = problem.inputs.shape[-1], problem.h0.shape[-1]
    O = problem.targets.shape[-1]
    dtype = torch.float64 if problem.dtype == np.float64 else torch.float32
    lstm = torch.nn.LSTM(X, H, dtype=dtype)
    head = torch.nn.Linear(H, O, dtype=dtype)
    state = {k: torch.tensor(v) for k, v in internal_to_torch(problem.params).items()}
    lstm.load_state_dict({k: state[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")})
    head.load_state_dict({"weight": state["head.weight"], "bias": state["head.bias"]})
    x = _tensor(problem.inputs)
    h0, c0 = _tensor(problem.h0[None]), _tensor(problem.c0[None])  # (1, [B,] H): one layer
    out, (h_last, c_last) = lstm(x, (h0, c0))
    y = head(out)  # (T, [B,] O)
    loss = _mse(y, torch.from_numpy(problem.targets))
    loss.backward()
    # After backward() every leaf has its .grad, which torch types as Tensor | None.
    grad_state = {f"{k}": _numpy(getattr(lstm, k).grad)
                  for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    grad_state["head.weight"] = _numpy(head.weight.grad)  # type: ignore[arg-type]
    grad_state["head.bias"] = _numpy(head.bias.grad)  # type: ignore[arg-type]
    return Totals(loss=loss.item(), outputs=_numpy(y), h_last=_numpy(h_last[0]), c_last=_numpy(c_last[0]),
                  grads=torch_to_internal(grad_state, gradient=True), dinputs=_numpy(x.grad),  # type: ignore[arg-type]
                  dh0=_numpy(h0.grad[0]), dc0=_numpy(c0.grad[0]))  # type: ignore[index]


@contextmanager
def _reference_mode() -> Iterator[None]:
    """How the references run torch, whatever the caller (or code it imported, such as the file under test) set:
    with gradients on, on the CPU, float32 as the default dtype, and on one intra-op thread (per-step ops are
    tiny: more threads only add overhead, and thrash on a loaded 2-core machine).  All put back after."""
    threads, dtype, device = torch.get_num_threads(), torch.get_default_dtype(), torch.get_default_device()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    if device.type != "cpu":  # no default-device mode at all (one on the CPU would intercept every op: slow)
        torch.set_default_device(None)
    try:
        with torch.enable_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
        if device.type != "cpu":
            torch.set_default_device(device)


def trace(problem: Problem) -> Trace:
    """Every per-step tensor and gradient from an instrumented twin in torch ops; totals from ``official``.

    The twin's per-step gradients come from one ``torch.autograd.grad`` over each step's gate pre-activations,
    y, and the state entering the step.  Its weights are constants: autograd then never accumulates a
    parameter-sized outer product per step (the per-step contributions are ``Trace.step_param_grads``), and
    the totals come from the official ``nn.LSTM``, the authority (a test checks the two agree).
    """
    with _reference_mode():
        totals = _official(problem)  # first: its autograd graph is gone before the twin's is built
        forward, backward = _instrumented(problem)
    return Trace(NAME, forward, backward, totals)


def _instrumented(problem: Problem) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    state = {k: torch.tensor(v) for k, v in internal_to_torch(problem.params).items()}
    W_hh_T = state["weight_hh_l0"].T  # (H, 4H)
    W_y_T, b_y = state["head.weight"].T, state["head.bias"]
    xw = torch.from_numpy(problem.inputs) @ state["weight_ih_l0"].T + state["bias_ih_l0"] + state["bias_hh_l0"]
    targets = torch.from_numpy(problem.targets)
    h, c = _tensor(problem.h0), _tensor(problem.c0)
    names = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "h", "y", "h_prev", "c_prev")
    steps: dict[str, list[torch.Tensor]] = {name: [] for name in names}  # per tensor, its value at every step
    probes: list[torch.Tensor] = []
    for t in range(problem.steps):
        h_prev, c_prev = h.clone(), c.clone()  # own nodes: their grads come through step t and later only
        gates = xw[t] + h_prev @ W_hh_T  # ([B,] 4H)
        i_pre, f_pre, g_pre, o_pre = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i_pre), torch.sigmoid(f_pre), torch.tanh(g_pre), torch.sigmoid(o_pre)
        c = f * c_prev + i * g
        c_tanh = torch.tanh(c)
        h = o * c_tanh
        y = h @ W_y_T + b_y  # ([B,] O)
        for name, value in zip(names, (f_pre, i_pre, g_pre, o_pre, f, i, g, o, c, c_tanh, h, y, h_prev, c_prev)):
            steps[name].append(value)
        probes += [gates, y, h_prev, c_prev]
    del xw  # (T, [B,] 4H): no graph holds it
    # One loss node over every step (not T chained additions): each y_t's gradient is the same 2 (y_t - target) / O.
    loss = _mse(torch.stack(steps["y"]), targets)
    per_step = torch.autograd.grad(loss, probes)
    del loss, probes
    columns = {"d_gates": list(per_step[0::4]), "dy": list(per_step[1::4]), "dh_prev": list(per_step[2::4]),
               "dc_prev": list(per_step[3::4]), **steps}
    del per_step, steps
    stacked = _stacked_columns(columns)  # each quantity stacked over the steps, as (T, [B,] n) NumPy arrays
    forward = {name: stacked[name] for name in FORWARD_TENSORS + ("h_prev", "c_prev")}
    di, df, dg, do = np.split(stacked["d_gates"], 4, axis=-1)  # torch's gate order: i, f, g, o
    dh_prev, dc_prev = stacked["dh_prev"], stacked["dc_prev"]
    backward = {"dy": stacked["dy"], "df_pre": df, "di_pre": di, "dg_pre": dg, "do_pre": do, "dh_prev": dh_prev,
                "dc_prev": dc_prev, "dh_next": grads_entering_later_steps(dh_prev),
                "dc_next": grads_entering_later_steps(dc_prev)}
    return forward, backward


STACK_STEPS = 256  # steps copied per round in ``_stacked_columns``


def _stacked_columns(columns: dict[str, list[torch.Tensor]]) -> dict[str, np.ndarray]:
    """Each list of per-step tensors stacked into one (T, ...) NumPy array (torch.stack's copy, the same bits),
    a few steps at a time: those steps' tensors are let go (the lists emptied) and their memory given back before
    the next ones are copied, so that the per-step tensors and the stacks are never all held at once."""
    T = len(next(iter(columns.values())))
    out = {name: torch.empty((T, *values[0].shape), dtype=values[0].dtype) for name, values in columns.items()}
    held = sum(tensor.nbytes for tensor in out.values())  # about what the per-step tensors hold
    with torch.no_grad():
        for start in range(0, T, STACK_STEPS):
            stop = min(T, start + STACK_STEPS)
            for name, values in columns.items():
                torch.stack(values[start:stop], out=out[name][start:stop])
                values[start:stop] = [None] * (stop - start)  # type: ignore[list-item]
            release_free_memory(held)
    return {name: tensor.numpy() for name, tensor in out.items()}
