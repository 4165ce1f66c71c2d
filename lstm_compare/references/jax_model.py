"""JAX reference for a model (``references/model.py``): one ``jax.lax.scan`` per slot, jit-compiled per model.

As in ``references/jax_lstm.py``: 64-bit types only inside the scoped ``own_settings``, a dtype check on every
result, and per-step gradients from zero-valued probes (the gradient of the loss with respect to a probe added
to a tensor is that tensor's per-step gradient).  Totals come from flax (``references/flax_model.py``, the JAX
authority) where flax has the cell, no peepholes and no projection; otherwise, or when flax is not installed,
from the scan itself.
"""

import functools
import importlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from lstm_compare.references.jax_lstm import WrongPrecision, own_settings
from lstm_compare.lstm.model import Model, ModelProblem, ModelTotals, ModelTrace, Slot, SlotTrace
from lstm_compare.lstm.records import grads_entering_later_steps

NAME = "jax"
FORWARD = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "m", "h", "h_prev", "c_prev")
# Zero probes, per slot and step: added to x_t as this slot reads it (dx), to each pre-activation, to the state
# entering the step, to h_t itself (the whole dL/dh_t) and to the copy of h_t the head or layer above reads.
PROBES = ("x", "f_pre", "i_pre", "g_pre", "o_pre", "h_prev", "c_prev", "h", "h_out")
Arrays = dict[str, jax.Array]


def _step(cell: Arrays, peepholes: bool, carry: tuple[jax.Array, jax.Array], probe: Arrays
          ) -> tuple[tuple[jax.Array, jax.Array], Arrays]:
    h, c = carry
    x = probe["x_t"] + probe["x"]
    h_prev, c_prev = h + probe["h_prev"], c + probe["c_prev"]
    xh = jnp.concatenate([x, h_prev], axis=-1)  # ([B,] In+S)
    f_pre = xh @ cell["Wf"] + cell["bf"] + (cell["pf"] * c_prev if peepholes else 0) + probe["f_pre"]  # ([B,] H)
    i_pre = xh @ cell["Wi"] + cell["bi"] + (cell["pi"] * c_prev if peepholes else 0) + probe["i_pre"]
    g_pre = xh @ cell["Wg"] + cell["bg"] + probe["g_pre"]
    f, i, g = jax.nn.sigmoid(f_pre), jax.nn.sigmoid(i_pre), jnp.tanh(g_pre)
    c = f * c_prev + i * g
    o_pre = xh @ cell["Wo"] + cell["bo"] + (cell["po"] * c if peepholes else 0) + probe["o_pre"]  # peeks at this c
    o = jax.nn.sigmoid(o_pre)
    c_tanh = jnp.tanh(c)
    m = o * c_tanh
    h = (m @ cell["Wr"] if "Wr" in cell else m) + probe["h"]  # ([B,] S)
    out = dict(f_pre=f_pre, i_pre=i_pre, g_pre=g_pre, o_pre=o_pre, f=f, i=i, g=g, o=o, c=c,
               c_tanh=c_tanh, m=m, h=h, h_prev=h_prev, c_prev=c_prev, x=x, h_out=h + probe["h_out"])
    return (h, c), out


def _slot(model: Model, params: Arrays, slot: Slot, seq: jax.Array, h0: jax.Array, c0: jax.Array, probes: Arrays
          ) -> tuple[jax.Array, jax.Array, Arrays]:
    """One cell over ``seq`` (T, [B,] In, time order) in the slot's processing order."""
    cell = {name: params[name + slot.suffix] for name in model.cell_params()}
    xs = {**probes, "x_t": seq[::-1] if slot.reverse else seq}
    (h, c), out = jax.lax.scan(lambda carry, p: _step(cell, model.peepholes, carry, p), (h0, c0), xs)
    return h, c, out


def _loss(model: Model, params: Arrays, inputs: jax.Array, h0: jax.Array, c0: jax.Array, probes: list[Arrays],
          targets: jax.Array) -> tuple[jax.Array, tuple[list[Arrays], jax.Array, jax.Array, jax.Array]]:
    outs, h_last, c_last, layer_input = [], [], [], inputs
    for layer in range(1, model.layers + 1):
        outputs = []
        for k, slot in enumerate(model.slots()):
            if slot.layer != layer:
                continue
            h, c, out = _slot(model, params, slot, layer_input, h0[k], c0[k], probes[k])
            outs.append(out)
            h_last.append(h)
            c_last.append(c)
            outputs.append(out["h_out"][::-1] if slot.reverse else out["h_out"])
        layer_input = jnp.concatenate(outputs, axis=-1)  # (T, [B,] D S)
    y = layer_input @ params["Wy"] + params["by"]  # (T, [B,] O)
    loss = jnp.sum(jnp.mean((y - targets) ** 2, axis=-1))
    return loss, (outs, y, jnp.stack(h_last), jnp.stack(c_last))


@functools.lru_cache(maxsize=None)
def _value_and_grad(model: Model) -> Callable[..., Any]:
    return jax.jit(jax.value_and_grad(functools.partial(_loss, model), argnums=(0, 1, 2, 3, 4), has_aux=True))


def trace_model(problem: ModelProblem) -> ModelTrace:
    """Every slot's per-step tensors from the scan; totals from flax where it has the model, else the scan's."""
    with own_settings():  # scoped to this thread and this computation: no global JAX setting changes
        result = _trace(problem)
        totals = _flax_totals(problem)
    if totals is not None:
        result = ModelTrace(NAME, result.model, result.slots, totals)
    _check_dtype(result, problem)
    return result


def scan_model(problem: ModelProblem) -> ModelTrace:
    """The scan alone, its own totals included (tests hold them against flax and torch)."""
    with own_settings():
        result = _trace(problem)
    _check_dtype(result, problem)
    return result


def _flax_totals(problem: ModelProblem) -> ModelTotals | None:
    """flax's totals, or None where flax lacks the model (peepholes, a projection) or is not installed."""
    if problem.model.peepholes or problem.model.proj:
        return None
    try:  # import_module, not `from references import`: a module already imported answers the latter regardless
        flax_model = importlib.import_module("lstm_compare.references.flax_model")
    except ImportError:
        return None
    totals: ModelTotals = flax_model.official_model(problem)
    return totals


def _check_dtype(result: ModelTrace, problem: ModelProblem) -> None:
    arrays = {f"{slot.label()} {name}": a for slot, st in result.slots.items()
              for name, a in {**st.forward, **st.backward}.items()}
    arrays.update({f"d{name}": a for name, a in result.totals.grads.items()})
    wrong = {name: a.dtype.name for name, a in arrays.items() if a.dtype != problem.dtype}
    if wrong:
        name, dtype = next(iter(wrong.items()))
        raise WrongPrecision(f"the JAX reference ran in {dtype} instead of {np.dtype(problem.dtype).name} "
                             f"({name} and {len(wrong) - 1} more)")


def _probes(problem: ModelProblem) -> list[dict[str, np.ndarray]]:
    model, T, H = problem.model, problem.steps, problem.hidden
    batch, S = problem.inputs.shape[1:-1], model.state_size(H)
    X = problem.inputs.shape[-1]
    sizes = {"x": 0, "f_pre": H, "i_pre": H, "g_pre": H, "o_pre": H, "h_prev": S, "c_prev": H, "h": S, "h_out": S}
    return [{name: np.zeros((T, *batch, n or model.input_size(slot.layer, X, H)), problem.dtype)
             for name, n in sizes.items()} for slot in model.slots()]


def _trace(problem: ModelProblem) -> ModelTrace:
    model = problem.model
    params = {k: jnp.asarray(v) for k, v in problem.params.items()}
    (loss, (outs, y, h_last, c_last)), (dparams, dinputs, dh0, dc0, dprobes) = _value_and_grad(model)(
        params, problem.inputs, problem.h0, problem.c0, _probes(problem), problem.targets)
    slots = {}
    for slot, out, d in zip(model.slots(), outs, dprobes):
        names = [name for name in FORWARD if model.proj or name != "m"]
        forward = {name: np.asarray(out[name]) for name in names}
        dh_prev, dc_prev = np.asarray(d["h_prev"]), np.asarray(d["c_prev"])
        backward = {"dh_out": np.asarray(d["h_out"]), "dh": np.asarray(d["h"]),
                    **{f"d{gate}_pre": np.asarray(d[f"{gate}_pre"]) for gate in "figo"},
                    "dh_prev": dh_prev, "dc_prev": dc_prev, "dh_next": grads_entering_later_steps(dh_prev),
                    "dc_next": grads_entering_later_steps(dc_prev), "dx": np.asarray(d["x"])}
        slots[slot] = SlotTrace(slot, np.asarray(out["x"]), forward, backward)
    totals = ModelTotals(loss=float(loss), outputs=np.asarray(y), h_last=np.asarray(h_last),
                         c_last=np.asarray(c_last), grads={k: np.asarray(dparams[k]) for k in model.param_names()},
                         dinputs=np.asarray(dinputs), dh0=np.asarray(dh0), dc0=np.asarray(dc0))
    return ModelTrace(NAME, model, slots, totals)
