"""references/layout.py: internal dict <-> torch state_dict conversions are exact and follow torch's i, f, g, o order."""

import numpy as np
import pytest
import torch

from lstm_compare import handrolled
from lstm_compare.references.layout import PARAM_NAMES, TORCH_KEYS, internal_to_torch, sizes, torch_to_internal

SHAPES = [(1, 1, 1), (3, 5, 2), (1, 32, 2), (3, 32, 1)]  # (X, H, O)
shapes = pytest.mark.parametrize("X,H,O", SHAPES, ids=[f"X{x}-H{h}-O{o}" for x, h, o in SHAPES])
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def seed_params(X, H, O, dtype, seed=0):
    return handrolled.init_params(X, H, O, seed=seed, dtype=dtype)


def random_state(X, H, O, dtype, seed=0):
    """A torch-layout state with every entry drawn independently (bias_hh non-zero)."""
    rng = np.random.default_rng(seed)
    shapes_ = {"weight_ih_l0": (4 * H, X), "weight_hh_l0": (4 * H, H), "bias_ih_l0": (4 * H,),
               "bias_hh_l0": (4 * H,), "head.weight": (O, H), "head.bias": (O,)}
    return {key: rng.normal(size=shape).astype(dtype) for key, shape in shapes_.items()}


def assert_same(actual, expected):
    assert set(actual) == set(expected)
    for key in expected:
        assert actual[key].dtype == expected[key].dtype, key
        assert actual[key].shape == expected[key].shape, key
        assert np.array_equal(actual[key], expected[key]), key


@shapes
@dtypes
@pytest.mark.parametrize("gradient", [False, True], ids=["weights", "gradient"])
def test_internal_to_torch_to_internal_round_trips_exactly(X, H, O, dtype, gradient):
    params = seed_params(X, H, O, dtype)
    state = internal_to_torch(params)
    assert tuple(state) == TORCH_KEYS
    assert sizes(params) == (X, H, O)
    back = torch_to_internal(state, gradient=gradient)
    assert tuple(back) == PARAM_NAMES
    assert_same(back, params)


@shapes
@dtypes
def test_torch_to_internal_to_torch_round_trips_exactly_once_biases_are_folded(X, H, O, dtype):
    state = random_state(X, H, O, dtype)
    params = torch_to_internal(state)
    # The internal layout has one bias per gate: it is bias_ih + bias_hh, and comes back whole in bias_ih.
    folded = dict(state, bias_ih_l0=state["bias_ih_l0"] + state["bias_hh_l0"],
                  bias_hh_l0=np.zeros_like(state["bias_hh_l0"]))
    assert_same(internal_to_torch(params), folded)
    # Folded once, the state round-trips exactly on either path.
    assert_same(internal_to_torch(torch_to_internal(folded)), folded)
    assert_same(internal_to_torch(torch_to_internal(folded, gradient=True)), folded)


@shapes
@dtypes
def test_gradient_path_takes_the_bias_gradient_from_bias_ih_alone(X, H, O, dtype):
    state = random_state(X, H, O, dtype)
    state["bias_hh_l0"] = state["bias_ih_l0"].copy()  # as in torch, where both bias gradients are dL/db
    grads = torch_to_internal(state, gradient=True)
    weights = torch_to_internal(state)
    for k, gate in enumerate("ifgo"):
        assert np.array_equal(grads[f"b{gate}"], state["bias_ih_l0"][k * H:(k + 1) * H])
        assert np.array_equal(weights[f"b{gate}"], 2 * state["bias_ih_l0"][k * H:(k + 1) * H])
        assert np.array_equal(grads[f"W{gate}"], weights[f"W{gate}"])
    back = internal_to_torch(grads)
    for key in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "head.weight", "head.bias"):
        assert np.array_equal(back[key], state[key]), key


@shapes
@dtypes
def test_torch_blocks_are_stacked_in_i_f_g_o_order_as_xh_at_w_transposed(X, H, O, dtype):
    # torch.nn.LSTM documents weight_ih_l0 as (W_ii|W_if|W_ig|W_io) and gates = x @ W_ih.T + h @ W_hh.T + b.
    params = seed_params(X, H, O, dtype)
    state = internal_to_torch(params)
    for k, gate in enumerate("ifgo"):
        rows = slice(k * H, (k + 1) * H)
        assert np.array_equal(state["weight_ih_l0"][rows], params[f"W{gate}"][:X].T), gate
        assert np.array_equal(state["weight_hh_l0"][rows], params[f"W{gate}"][X:].T), gate
        assert np.array_equal(state["bias_ih_l0"][rows], params[f"b{gate}"]), gate
    assert not state["bias_hh_l0"].any()
    assert np.array_equal(state["head.weight"], params["Wy"].T)
    assert np.array_equal(state["head.bias"], params["by"])
    for key, array in state.items():
        assert array.dtype == dtype and array.flags.c_contiguous, key


def test_real_torch_gradients_round_trip_through_the_gradient_path(normwise):
    """torch's own LSTM gradients: bias_ih and bias_hh gradients are equal, and the gradient path is exact."""
    X, H, O = 3, 5, 2
    params = seed_params(X, H, O, np.float64, seed=3)
    lstm = torch.nn.LSTM(X, H, dtype=torch.float64)
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in internal_to_torch(params).items() if k.endswith("_l0")})
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(4, 2, X)))
    out, _ = lstm(x)
    out.pow(2).sum().backward()
    grad_state = {k: getattr(lstm, k).grad.numpy().copy()
                  for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    grad_state["head.weight"], grad_state["head.bias"] = np.ones((O, H)), np.ones(O)
    # Mathematically both are dL/db; torch reduces them separately, so they agree to rounding, not bit for bit
    # (measured 5.6e-17 apart here, 7.9e-17 relative to the largest entry: under one float64 eps).
    assert normwise(grad_state["bias_hh_l0"], grad_state["bias_ih_l0"]) <= 1e-15
    grads = torch_to_internal(grad_state, gradient=True)
    back = internal_to_torch(grads)
    for key in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "head.weight", "head.bias"):
        assert np.array_equal(back[key], grad_state[key]), key
