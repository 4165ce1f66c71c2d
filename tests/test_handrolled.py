"""handrolled on its own: a stable sigmoid, float32 kept end to end, and batching that is a plain sum."""

import warnings

import numpy as np
import pytest

from lstm_compare import handrolled
from lstm_compare.lstm.problem import ProblemSpec, make_problem


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sigmoid_saturates_without_overflow_or_warning_up_to_1e4(dtype):
    z = np.concatenate([np.linspace(-1e4, 1e4, 20001), [-1e4, -1e3, -100, -88.8, 88.8, 100, 1e3, 1e4]]).astype(dtype)
    # Overflow, invalid and divide-by-zero raise; underflow (exp(-1e4) -> 0) is NumPy's default, silent, and
    # harmless here: it only ever produces the correctly rounded saturated value.
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = handrolled.sigmoid(z)
    assert s.dtype == dtype
    assert np.all(np.isfinite(s)) and np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s[:20001]) >= 0), "sigmoid must be non-decreasing"
    assert handrolled.sigmoid(dtype(1e4)) == 1 and handrolled.sigmoid(dtype(-1e4)) == 0
    assert handrolled.sigmoid(np.array([0], dtype))[0] == 0.5


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sigmoid_is_accurate_to_a_few_eps(dtype):
    z = np.linspace(-60, 60, 12001).astype(dtype)
    # The textbook form, safe from overflow on this range, in extended precision where the platform has it.
    wide = z.astype(np.longdouble)
    exact = (1 / (1 + np.exp(-wide))).astype(np.float64)
    s = handrolled.sigmoid(z)
    eps = np.finfo(dtype).eps
    # Absolute error over the whole range, and relative error in the far negative tail where the value is tiny.
    assert np.max(np.abs(s - exact)) <= 2 * eps
    tail = z < -10
    assert np.max(np.abs(s[tail] - exact[tail]) / exact[tail]) <= 4 * eps
    # Symmetry sigmoid(-z) = 1 - sigmoid(z), to rounding.
    assert np.max(np.abs(handrolled.sigmoid(-z) - (1 - s))) <= 2 * eps


@pytest.mark.parametrize("batch", [None, 4], ids=["unbatched", "B4"])
def test_float32_in_gives_float32_in_every_cache_entry_and_gradient(batch):
    problem = make_problem(ProblemSpec(steps=3, hidden=5, inputs=3, outputs=2, batch=batch, dtype="float32",
                                       seed=11)).astype(np.float32)
    p = problem.params
    y, h, c, cache = handrolled.lstm(p, problem.inputs[0], problem.h0, problem.c0)
    dtypes = {"y": y.dtype, "h": h.dtype, "c": c.dtype,
              **{f"cache.{n}": v.dtype for n, v in zip(handrolled.CACHE_FIELDS, cache)}}
    dy = 2 * (y - problem.targets[0]) / y.shape[-1]
    dparams, dh, dc = handrolled.dlstm(p, dy, np.ones_like(h), np.ones_like(c), cache)
    dtypes.update({"dh_prev": dh.dtype, "dc_prev": dc.dtype, **{f"step d{k}": v.dtype for k, v in dparams.items()}})
    _, outputs, loss, h_last, c_last, caches = handrolled.lstm_loss(p, problem.h0, problem.c0, problem.inputs,
                                                                    problem.targets)
    dtypes.update({"outputs": np.stack(outputs).dtype, "h_last": h_last.dtype, "c_last": c_last.dtype,
                   "loss": np.asarray(loss).dtype})
    dtypes.update({f"caches[{t}].{n}": v.dtype for t, entry in enumerate(caches)
                   for n, v in zip(handrolled.CACHE_FIELDS, entry)})
    grads = handrolled.dlstm_loss(p, problem.inputs, problem.targets, outputs, caches)
    dtypes.update({f"d{k}": v.dtype for k, v in grads.items()})
    assert len(grads) == len(handrolled.PARAM_NAMES) == len(dparams)
    wrong = {name: dtype.name for name, dtype in dtypes.items() if dtype != np.float32}
    assert not wrong, f"not float32: {wrong}"


def element(problem, b):
    """Batch element ``b`` of a batched problem, as an unbatched problem's arrays."""
    return problem.inputs[:, b], problem.targets[:, b], problem.h0[b], problem.c0[b]


# Batched and per-element runs do the same arithmetic in a different order (a matmul over B rows against B
# vector-matrix products; one batch sum against B separate sums), so they agree to rounding, not bit for bit.
# Measured worst norm-wise error in float64 on the problems below: 1.1e-15 (forward), 1.3e-15 (gradients); over
# 30 more (T=17, B=4, H in 1, 5, 32), up to 1.3e-14 for a cancelling H=1 gradient.  Held to 1e-13.
BATCH_TOLERANCE = 1e-13


@pytest.mark.parametrize("spec", [
    ProblemSpec(steps=17, hidden=5, inputs=3, outputs=2, batch=4, seed=21),
    ProblemSpec(steps=2, hidden=32, inputs=1, outputs=1, batch=4, seed=22, zero_state=True),
], ids=["T17-H5-X3-O2-B4-randomstate", "T2-H32-X1-O1-B4-zerostate"])
def test_batched_gradients_equal_the_sum_of_unbatched_per_element_gradients(spec, normwise):
    problem = make_problem(spec)
    p = problem.params
    _, outputs, loss, h_last, c_last, caches = handrolled.lstm_loss(p, problem.h0, problem.c0, problem.inputs,
                                                                    problem.targets)
    grads = handrolled.dlstm_loss(p, problem.inputs, problem.targets, outputs, caches)

    errors = {}
    summed = {name: 0.0 for name in handrolled.PARAM_NAMES}
    losses = []
    for b in range(spec.batch):
        inputs, targets, h0, c0 = element(problem, b)
        _, outs_b, loss_b, h_b, c_b, caches_b = handrolled.lstm_loss(p, h0, c0, inputs, targets)
        grads_b = handrolled.dlstm_loss(p, inputs, targets, outs_b, caches_b)
        for name in handrolled.PARAM_NAMES:
            summed[name] = summed[name] + grads_b[name]
        losses.append(loss_b)
        errors[f"outputs[b={b}]"] = normwise(np.stack(outputs)[:, b], np.stack(outs_b))
        errors[f"h_last[b={b}]"] = normwise(h_last[b], h_b)
        errors[f"c_last[b={b}]"] = normwise(c_last[b], c_b)
    errors["loss"] = normwise(loss, sum(losses))
    errors.update({f"d{name}": normwise(grads[name], summed[name]) for name in handrolled.PARAM_NAMES})
    bad = {label: e for label, e in errors.items() if not e <= BATCH_TOLERANCE}
    assert not bad, f"batched differs from per-element: {bad}"


def test_batched_step_backward_is_the_per_element_step_backward_summed(normwise):
    problem = make_problem(ProblemSpec(steps=1, hidden=5, inputs=3, outputs=2, batch=4, seed=23))
    p = problem.params
    y, h, c, cache = handrolled.lstm(p, problem.inputs[0], problem.h0, problem.c0)
    dy = 2 * (y - problem.targets[0]) / y.shape[-1]
    rng = np.random.default_rng(23)
    dh_next, dc_next = rng.normal(size=h.shape), rng.normal(size=c.shape)
    dparams, dh_prev, dc_prev = handrolled.dlstm(p, dy, dh_next, dc_next, cache)

    errors = {}
    summed = {name: 0.0 for name in handrolled.PARAM_NAMES}
    for b in range(4):
        inputs, _, h0, c0 = element(problem, b)
        y_b, _, _, cache_b = handrolled.lstm(p, inputs[0], h0, c0)
        d_b, dh_b, dc_b = handrolled.dlstm(p, dy[b], dh_next[b], dc_next[b], cache_b)
        summed = {name: summed[name] + d_b[name] for name in handrolled.PARAM_NAMES}
        errors[f"y[b={b}]"] = normwise(y[b], y_b)
        errors[f"dh_prev[b={b}]"] = normwise(dh_prev[b], dh_b)
        errors[f"dc_prev[b={b}]"] = normwise(dc_prev[b], dc_b)
    errors.update({f"d{name}": normwise(dparams[name], summed[name]) for name in handrolled.PARAM_NAMES})
    bad = {label: e for label, e in errors.items() if not e <= BATCH_TOLERANCE}
    assert not bad, f"batched step differs from per-element steps: {bad}"
