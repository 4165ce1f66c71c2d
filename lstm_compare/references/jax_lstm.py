"""JAX reference: ``jax.lax.scan``, jit-compiled, float64 available.

64-bit types are enabled only around this reference's own computation (``jax.enable_x64(True)``, a
thread-local scoped setting), never process-wide: importing this module changes no JAX setting, and another
module that turns ``jax_enable_x64`` off cannot make it run silently in float32 (``trace`` also checks the dtype
every result actually came out in).

Per-step gradients come from zero-valued probes added to each gate pre-activation, to y_t and to the state
entering each step: the gradient of the loss with respect to a probe is exactly that per-step quantity.
"""

import contextlib
import importlib
from typing import Callable, ContextManager, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from lstm_compare.lstm.records import FORWARD_TENSORS, Problem, Totals, Trace, grads_entering_later_steps

NAME = "jax"
# The scoped 64-bit switch: ``jax.enable_x64`` in current JAX; older releases (down to the supported 0.4.26)
# have the same context manager as ``jax.experimental.enable_x64``.
_enable_x64: Callable[[bool], ContextManager[None]] = (jax.enable_x64 if hasattr(jax, "enable_x64")
                                                      else importlib.import_module("jax.experimental").enable_x64)
PROBES = ("f_pre", "i_pre", "g_pre", "o_pre", "y", "h_prev", "c_prev")


@contextlib.contextmanager
def own_settings() -> Iterator[None]:
    """JAX as the references run it, whatever the caller (or the file under test) set: 64-bit types, NumPy's
    rank and dtype promotion, jit on.  Each setting is scoped to this thread and this block."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_enable_x64(True))
        for name, value in (("numpy_rank_promotion", "allow"), ("numpy_dtype_promotion", "standard"),
                            ("disable_jit", False)):
            setting = getattr(jax, name, None)  # each a context manager in current JAX
            if setting is not None:
                stack.enter_context(setting(value))
        yield


def _step(params: dict[str, jax.Array], carry: tuple[jax.Array, jax.Array],
          xs: tuple[jax.Array, jax.Array, dict[str, jax.Array]]
          ) -> tuple[tuple[jax.Array, jax.Array], dict[str, jax.Array]]:
    h, c = carry
    x, target, probe = xs
    h_prev, c_prev = h + probe["h_prev"], c + probe["c_prev"]
    xh = jnp.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)
    pre = {k: xh @ params[f"W{k}"] + params[f"b{k}"] + probe[f"{k}_pre"] for k in "figo"}  # ([B,] H)
    f, i, o = (jax.nn.sigmoid(pre[k]) for k in "fio")
    g = jnp.tanh(pre["g"])
    c = f * c_prev + i * g
    c_tanh = jnp.tanh(c)
    h = o * c_tanh
    y = h @ params["Wy"] + params["by"] + probe["y"]  # ([B,] O)
    loss = jnp.sum(jnp.mean((y - target) ** 2, axis=-1))
    out = dict(f_pre=pre["f"], i_pre=pre["i"], g_pre=pre["g"], o_pre=pre["o"], f=f, i=i, g=g, o=o, c=c,
               c_tanh=c_tanh, h=h, y=y, h_prev=h_prev, c_prev=c_prev, loss=loss)
    return (h, c), out


def _loss(params: dict[str, jax.Array], inputs: jax.Array, h0: jax.Array, c0: jax.Array, probes: dict[str, jax.Array],
          targets: jax.Array) -> tuple[jax.Array, tuple[dict[str, jax.Array], jax.Array, jax.Array]]:
    (h_last, c_last), out = jax.lax.scan(lambda carry, xs: _step(params, carry, xs), (h0, c0),
                                         (inputs, targets, probes))
    return out["loss"].sum(), (out, h_last, c_last)


_value_and_grad = jax.jit(jax.value_and_grad(_loss, argnums=(0, 1, 2, 3, 4), has_aux=True))


class WrongPrecision(RuntimeError):
    """JAX computed in another dtype than the problem's (64-bit types were off despite the scoped setting)."""


def trace(problem: Problem) -> Trace:
    """Every per-step tensor and gradient, and the totals, from one jitted value-and-grad."""
    with own_settings():  # scoped to this thread and this computation: no global JAX setting changes
        result = _trace(problem)
    wrong = {name: a.dtype.name for name, a in {**result.forward, **result.backward, **result.totals.grads}.items()
             if a.dtype != problem.dtype}
    if wrong:
        name, dtype = next(iter(wrong.items()))
        raise WrongPrecision(f"the JAX reference ran in {dtype} instead of {np.dtype(problem.dtype).name} "
                             f"({name} and {len(wrong) - 1} more)")
    return result


def _trace(problem: Problem) -> Trace:
    T = problem.steps
    H, O = problem.h0.shape[-1], problem.targets.shape[-1]
    batch = problem.inputs.shape[1:-1]
    probes = {k: np.zeros((T, *batch, O if k == "y" else H), problem.dtype) for k in PROBES}
    params = {k: jnp.asarray(v) for k, v in problem.params.items()}
    (loss, (out, h_last, c_last)), (dparams, dinputs, dh0, dc0, dprobes) = _value_and_grad(
        params, problem.inputs, problem.h0, problem.c0, probes, problem.targets)
    forward = {name: np.asarray(out[name]) for name in FORWARD_TENSORS + ("h_prev", "c_prev")}
    backward = {"dy": np.asarray(dprobes["y"]), **{f"d{k}": np.asarray(dprobes[k]) for k in PROBES if k != "y"}}
    backward["dh_next"] = grads_entering_later_steps(backward["dh_prev"])
    backward["dc_next"] = grads_entering_later_steps(backward["dc_prev"])
    totals = Totals(loss=float(loss), outputs=forward["y"], h_last=np.asarray(h_last), c_last=np.asarray(c_last),
                    grads={k: np.asarray(v) for k, v in dparams.items()}, dinputs=np.asarray(dinputs),
                    dh0=np.asarray(dh0), dc0=np.asarray(dc0))
    return Trace(NAME, forward, backward, totals)
