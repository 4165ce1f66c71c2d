"""flax as the JAX authority for a model's totals: ``flax.linen.LSTMCell`` scanned by ``nn.RNN``, a reverse
direction paired by ``nn.Bidirectional``, a ``Dense`` head, loaded with the model's weights
(``references/model_layout.py``), differentiated by ``jax.value_and_grad``.

flax's cell has no peepholes and no projection: ``model_layout.NoEquivalent`` (a ValueError) for those.
Importing this module imports flax, which changes no JAX setting; 64-bit types are scoped as in
``references/jax_lstm.py``.
"""

import functools
from typing import Any, Callable, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lstm_compare.references.jax_lstm import own_settings
from lstm_compare.lstm.model import Model, ModelProblem, ModelTotals
from lstm_compare.references.model_layout import FLAX_CELL, FLAX_HEAD, flax_to_model, model_to_flax

NAME = "flax"
Carry = tuple[jax.Array, jax.Array]  # flax's order: (c, h)


class _Stack(nn.Module):
    """The model in flax's own combinators: per layer an ``RNN`` (or a ``Bidirectional`` pair), then the head."""

    model: Model
    hidden: int
    outputs: int

    @nn.compact
    def __call__(self, inputs: jax.Array, carries: list[Carry]) -> tuple[jax.Array, list[Carry]]:
        seq, finals = inputs, []  # (T, [B,] In), time-major
        for layer in range(1, self.model.layers + 1):
            slots = [(k, slot) for k, slot in enumerate(self.model.slots()) if slot.layer == layer]
            cells = [nn.LSTMCell(self.hidden, name=FLAX_CELL + slot.suffix) for _, slot in slots]
            rnns = [nn.RNN(cell, time_major=True) for cell in cells]
            initial = [carries[k] for k, _ in slots]
            if self.model.bidirectional:
                both = nn.Bidirectional(rnns[0], rnns[1], time_major=True, return_carry=True)
                (forward, backward), seq = both(seq, initial_carry=tuple(initial))
                finals += [forward, backward]
            else:
                carry, seq = rnns[0](seq, initial_carry=initial[0], return_carry=True)
                finals.append(carry)
        return nn.Dense(self.outputs, name=FLAX_HEAD)(seq), finals  # (T, [B,] O)


def _loss(module: _Stack, params: dict[str, Any], inputs: jax.Array, carries: list[Carry], targets: jax.Array
          ) -> tuple[jax.Array, tuple[jax.Array, list[Carry]]]:
    y, finals = cast(tuple[jax.Array, list[Carry]], module.apply({"params": params}, inputs, carries))
    return jnp.sum(jnp.mean((y - targets) ** 2, axis=-1)), (y, finals)


@functools.lru_cache(maxsize=None)
def _value_and_grad(model: Model, hidden: int, outputs: int) -> Callable[..., Any]:
    module = _Stack(model, hidden, outputs)
    return jax.jit(jax.value_and_grad(functools.partial(_loss, module), argnums=(0, 1, 2), has_aux=True))


def official_model(problem: ModelProblem) -> ModelTotals:
    """Totals from flax's ``LSTMCell`` with the problem's weights, in the problem's dtype."""
    model = problem.model
    tree = model_to_flax(model, problem.params)
    with own_settings():  # scoped to this thread and this computation: no global JAX setting changes
        carries = [(jnp.asarray(problem.c0[k]), jnp.asarray(problem.h0[k])) for k in range(len(model.slots()))]
        vg = _value_and_grad(model, problem.hidden, problem.targets.shape[-1])
        (loss, (y, finals)), (dtree, dinputs, dcarries) = vg(tree, problem.inputs, carries, problem.targets)
        return ModelTotals(loss=float(loss), outputs=np.asarray(y), h_last=np.stack([h for _, h in finals]),
                           c_last=np.stack([c for c, _ in finals]), grads=flax_to_model(model, dtree),
                           dinputs=np.asarray(dinputs), dh0=np.stack([h for _, h in dcarries]),
                           dc0=np.stack([c for c, _ in dcarries]))
