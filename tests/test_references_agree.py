"""handrolled, torch official, torch instrumented and JAX agree on every per-step tensor and every total.

float64: every implementation against the torch instrumented trace (per step) and torch official (totals), with
norm-wise relative error (max|a - b| / max|b| per tensor, per step) <= 1e-12.

float32: every implementation run in float32 against the float64 truth on the same float32-rounded values
(``make_problem`` draws them that way); the tolerance and its measurement are at FLOAT32_TOLERANCE below.
"""

import dataclasses
import functools
import sys

import numpy as np
import pytest

from lstm_compare import handrolled
from lstm_compare import references
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.references import BACKWARD_TENSORS, FORWARD_TENSORS, ReferenceUnavailable
from lstm_compare.lstm.records import STATE_TENSORS
from lstm_compare.references.torch_lstm import official

# float64, the gate, per step and per tensor.  Measured on this grid: worst 4.2e-13 per step (JAX, T=17 H=1
# B=4, bo's step-4 contribution: a batch sum that cancels to 5e-6), 3.8e-15 for totals.  An all-zero reference
# (dh_next after the last step, h_prev/c_prev at t=0 from a zero state) is compared in absolute terms instead
# (conftest.normwise_error), so there the implementations must agree to 1e-12 absolutely; they agree exactly.
FLOAT64_TOLERANCE = 1e-12

# float32, measured before choosing (every tensor of every step and every total, all four implementations, against
# the float64 truth, with the scales described below): the worst error on this grid is 4.7e-7 per step (handrolled
# g_pre, T=17 H=32) and 3.6e-7 for totals, about 4 float32 eps (eps = 1.19e-7); over 31 seed sets of the same
# shapes (248 problems) the worst is 2.0e-6 per step and 2.5e-6 for totals, about 20 eps: the rounding of 17 steps
# of a recurrence and the backward pass through them.  The tolerance, 1e-5 (84 eps), leaves a 4x margin over
# those 248 problems and 20x over this grid, and sits four orders of magnitude below the 1e-1..1 errors of a
# wrong gate equation, transpose or gate order.
#
# The scales: float32 rounding is relative to the operands that formed a value, so a value that cancels (y = h @ Wy
# + by landing near 0 at one step, a per-step bias gradient summed over a batch to 1e-6 of its terms, a gradient
# of H=1 or X=1 that is a single cancelling number) shows a large error relative to itself that says nothing about
# the implementation (measured: up to 7e-5 on this grid, T=17 H=1 B=4 bo at t=4, whose reference is 5e-6).  So in
# float32 a per-step tensor is scaled by its largest magnitude over the whole sequence, a total parameter gradient
# by the largest over the whole gradient, h_last/c_last/dh0/dc0 by their per-step records over the sequence, and
# dinputs together with dh_prev (both halves of dxh).  float64 keeps the strict per-step, per-tensor scaling.
FLOAT32_TOLERANCE = 1e-5

# Every listed value appears at least once: T {1, 2, 17}, H {1, 5, 32}, X {1, 3}, O {1, 2}, unbatched and B=4,
# zero and random initial state, and a different seed per point.  Eight shapes keep JAX compiles to sixteen.
GRID = [
    ProblemSpec(steps=1, hidden=1, inputs=1, outputs=1, batch=None, zero_state=True, seed=0),
    ProblemSpec(steps=2, hidden=5, inputs=3, outputs=2, batch=4, zero_state=False, seed=1),
    ProblemSpec(steps=17, hidden=32, inputs=3, outputs=1, batch=None, zero_state=False, seed=2),
    ProblemSpec(steps=17, hidden=5, inputs=1, outputs=2, batch=4, zero_state=True, seed=3),
    ProblemSpec(steps=2, hidden=32, inputs=1, outputs=2, batch=None, zero_state=False, seed=4),
    ProblemSpec(steps=17, hidden=1, inputs=3, outputs=1, batch=4, zero_state=False, seed=5),
    ProblemSpec(steps=17, hidden=32, inputs=3, outputs=2, batch=4, zero_state=True, seed=6),
    ProblemSpec(steps=1, hidden=32, inputs=1, outputs=1, batch=4, zero_state=False, seed=7),
]


def grid_id(spec):
    batch = "unbatched" if spec.batch is None else f"B{spec.batch}"
    state = "zero" if spec.zero_state else "random"
    return f"T{spec.steps}-H{spec.hidden}-X{spec.inputs}-O{spec.outputs}-{batch}-{state}state-seed{spec.seed}"


# (precision, implementation) pairs checked per step against the torch trace (in float64 that trace is the reference
# itself).  The totals are checked against torch official in float64.  Every pair compares two independent
# computations: the torch trace's totals are torch official's own (references/torch_lstm.trace), so a float64
# "torch" case would compare official with itself (error exactly 0), and a float32 "official" case would repeat
# the float32 "torch" case bit for bit; float32 "torch" stays (official in float32 against official in float64).
PER_STEP_CASES = [("float64", "handrolled"), ("float64", "jax"),
                  ("float32", "handrolled"), ("float32", "torch"), ("float32", "jax")]
TOTALS_CASES = [("float64", "handrolled"), ("float64", "jax"),
                ("float32", "handrolled"), ("float32", "torch"), ("float32", "jax")]

grid = pytest.mark.parametrize("spec", GRID, ids=grid_id)
per_step = pytest.mark.parametrize("precision,implementation", PER_STEP_CASES, ids=lambda v: v)
totals = pytest.mark.parametrize("precision,implementation", TOTALS_CASES, ids=lambda v: v)


class HandrolledRun:
    """handrolled driven step by step from the problem's h0, c0, recorded under the references' tensor names."""

    def __init__(self, problem):
        params, X, O = problem.params, problem.inputs.shape[-1], problem.targets.shape[-1]
        h, c = problem.h0, problem.c0
        steps = []
        for x in problem.inputs:
            y, h, c, cache = handrolled.lstm(params, x, h, c)
            record = dict(zip(handrolled.CACHE_FIELDS, cache), y=y)
            assert np.array_equal(record["xh"][..., :X], x)
            record["h_prev"] = record["xh"][..., X:]
            steps.append(record)
        self.forward = {name: np.stack([s[name] for s in steps]) for name in FORWARD_TENSORS + STATE_TENSORS}

        backward = {name: [None] * problem.steps for name in ("dy", "dh_next", "dc_next", "dh_prev", "dc_prev")}
        self.step_dparams = [None] * problem.steps
        dh, dc = np.zeros_like(h), np.zeros_like(c)
        for t in reversed(range(problem.steps)):
            dy = 2 * (steps[t]["y"] - problem.targets[t]) / O
            cache = tuple(steps[t][name] for name in handrolled.CACHE_FIELDS)
            backward["dy"][t], backward["dh_next"][t], backward["dc_next"][t] = dy, dh, dc
            self.step_dparams[t], dh, dc = handrolled.dlstm(params, dy, dh, dc, cache)
            backward["dh_prev"][t], backward["dc_prev"][t] = dh, dc
        self.backward = {name: np.stack(values) for name, values in backward.items()}

        # Totals through the sequence functions themselves; dh0 and dc0 (which dlstm_loss does not return) are
        # what the step driver above carried back to t=0.
        _, outputs, loss, h_last, c_last, caches = handrolled.lstm_loss(
            params, problem.h0, problem.c0, problem.inputs, problem.targets)
        self.totals = dict(loss=loss, outputs=np.stack(outputs), h_last=h_last, c_last=c_last, dh0=dh, dc0=dc,
                           grads=handrolled.dlstm_loss(params, problem.inputs, problem.targets, outputs, caches))


@functools.cache
def problems(spec, precision):
    """(the problem run in ``precision``, the float64 problem holding exactly the same values)."""
    if precision == "float64":
        problem = make_problem(spec)
        return problem, problem
    truth = make_problem(dataclasses.replace(spec, dtype="float32"))  # float32 values held in float64
    return truth.astype(np.float32), truth


@functools.cache
def run(spec, precision, implementation):
    """One implementation's record for the problem ``spec`` in ``precision`` (each computed once per session)."""
    problem, _ = problems(spec, precision)
    if implementation == "handrolled":
        return HandrolledRun(problem)
    if implementation == "official":
        return official(problem)
    return references.load(implementation).trace(problem)


def reference_trace(spec, precision):
    """The per-step authority: the float64 torch instrumented trace on the same values."""
    return run(spec, "float64", "torch") if precision == "float64" else truth_run(spec, "torch")


@functools.cache
def truth_run(spec, implementation):
    """float64 run on the float32-rounded values: the truth a float32 run is measured against."""
    _, truth = problems(spec, "float32")
    return official(truth) if implementation == "official" else references.load(implementation).trace(truth)


def reference_totals(spec, precision):
    return run(spec, "float64", "official") if precision == "float64" else truth_run(spec, "official")


def assert_all_within(errors, tolerance, what):
    """``errors`` maps a label to its error; fail listing the worst ones when any exceeds ``tolerance``."""
    bad = sorted(((e, label) for label, e in errors.items() if not e <= tolerance), reverse=True)
    assert not bad, f"{len(bad)} {what} exceed {tolerance:g}; worst: " + ", ".join(
        f"{label} {e:.2e}" for e, label in bad[:6])


def per_step_errors(actual, expected, names, precision, normwise):
    """Norm-wise error of every named tensor at every step.  float64 divides by that step's max|b|; float32 by
    the tensor's max over the whole sequence (see FLOAT32_TOLERANCE)."""
    errors = {}
    for name in names:
        whole = float(np.max(np.abs(expected[name]), initial=0.0))
        for t in range(expected[name].shape[0]):
            scale = None if precision == "float64" else whole
            errors[f"{name}[t={t}]"] = normwise(actual[name][t], expected[name][t], scale)
    return errors


def tolerance_for(precision):
    return FLOAT64_TOLERANCE if precision == "float64" else FLOAT32_TOLERANCE


@grid
@per_step
def test_forward_tensors_agree_at_every_step(spec, precision, implementation, normwise):
    actual = run(spec, precision, implementation).forward
    expected = reference_trace(spec, precision).forward
    errors = per_step_errors(actual, expected, FORWARD_TENSORS + STATE_TENSORS, precision, normwise)
    assert_all_within(errors, tolerance_for(precision), f"{implementation} forward tensors")


@grid
@per_step
def test_backward_tensors_agree_at_every_step(spec, precision, implementation, normwise):
    actual = run(spec, precision, implementation).backward
    expected = reference_trace(spec, precision).backward
    # handrolled's dlstm does not hand out d*_pre: its per-step parameter gradients (next test) carry them.
    names = [name for name in BACKWARD_TENSORS if name in actual]
    errors = per_step_errors(actual, expected, names, precision, normwise)
    assert_all_within(errors, tolerance_for(precision), f"{implementation} backward tensors")


@grid
@per_step
def test_each_steps_parameter_gradients_agree(spec, precision, implementation, normwise):
    problem, truth = problems(spec, precision)
    reference = reference_trace(spec, precision)
    expected = [reference.step_param_grads(t, truth.inputs) for t in range(spec.steps)]
    record = run(spec, precision, implementation)
    if implementation == "handrolled":
        actual = record.step_dparams
    else:
        actual = [record.step_param_grads(t, problem.inputs) for t in range(spec.steps)]
    stacked = lambda grads: {name: np.stack([g[name] for g in grads]) for name in handrolled.PARAM_NAMES}  # noqa: E731
    errors = per_step_errors(stacked(actual), stacked(expected), handrolled.PARAM_NAMES, precision, normwise)
    assert_all_within(errors, tolerance_for(precision), f"{implementation} per-step parameter gradients")


def totals_scales(spec, precision):
    """Denominators for the totals: None (each total's own max|b|) in float64; in float32 the magnitude of what
    each total belongs to (see FLOAT32_TOLERANCE): the whole gradient for parameter gradients, and the per-step
    record over the sequence for the final state, dh0, dc0 and dinputs."""
    expected = reference_totals(spec, precision)
    if precision == "float64":
        return dict.fromkeys(("loss", "outputs", "h_last", "c_last", "dinputs", "dh0", "dc0", "grads"))
    trace = reference_trace(spec, precision)
    largest = lambda a: float(np.max(np.abs(a), initial=0.0))  # noqa: E731
    # dinputs and dh_prev are the two halves of one product, dxh = d*_pre @ W.T, so they share one scale.
    dxh = max(largest(expected.dinputs), largest(trace.backward["dh_prev"]))
    return dict(loss=None, outputs=None, dinputs=dxh, h_last=largest(trace.forward["h"]),
                c_last=largest(trace.forward["c"]), dh0=largest(trace.backward["dh_prev"]),
                dc0=largest(trace.backward["dc_prev"]), grads=max(largest(g) for g in expected.grads.values()))


def totals_errors(spec, precision, implementation, normwise):
    expected = reference_totals(spec, precision)
    record = run(spec, precision, implementation)
    if implementation == "handrolled":  # no dinputs: handrolled's dlstm keeps only the h part of dxh
        actual, fields = record.totals, ("loss", "outputs", "h_last", "c_last", "dh0", "dc0")
    else:
        actual = {field: getattr(record.totals, field) for field in ("loss", "outputs", "h_last", "c_last",
                                                                     "dinputs", "dh0", "dc0", "grads")}
        fields = ("loss", "outputs", "h_last", "c_last", "dinputs", "dh0", "dc0")
    scales = totals_scales(spec, precision)
    errors = {field: normwise(actual[field], getattr(expected, field), scales[field]) for field in fields}
    errors.update({f"d{name}": normwise(actual["grads"][name], expected.grads[name], scales["grads"])
                   for name in handrolled.PARAM_NAMES})
    return errors


@grid
@totals
def test_totals_agree_with_torch_official(spec, precision, implementation, normwise):
    errors = totals_errors(spec, precision, implementation, normwise)
    assert_all_within(errors, tolerance_for(precision), f"{implementation} totals")


@grid
@pytest.mark.parametrize("implementation", ["torch", "jax", "official"])
def test_references_given_float32_return_float32(spec, implementation):
    record = run(spec, "float32", implementation)
    if implementation == "official":
        arrays = {"outputs": record.outputs, "dinputs": record.dinputs, **record.grads}
    else:
        arrays = {**record.forward, **record.backward, **record.totals.grads, "dinputs": record.totals.dinputs}
    wrong = {name: a.dtype.name for name, a in arrays.items() if a.dtype != np.float32}
    assert not wrong, f"not float32: {wrong}"


def test_unknown_reference_is_reported_in_one_line():
    with pytest.raises(ReferenceUnavailable) as raised:
        references.load("nope")
    message = str(raised.value)
    assert "\n" not in message and "'nope'" in message and "torch" in message and "jax" in message


def test_missing_jax_is_reported_in_one_line_while_torch_still_loads(monkeypatch):
    # A None entry in sys.modules makes `import jax` raise ImportError, exactly as when jax is not installed;
    # dropping the already-imported reference module forces importlib to run its imports again.
    monkeypatch.setitem(sys.modules, "jax", None)
    monkeypatch.delitem(sys.modules, "lstm_compare.references.jax_lstm", raising=False)
    with pytest.raises(ReferenceUnavailable) as raised:
        references.load("jax")
    message = str(raised.value)
    assert "\n" not in message and "'jax'" in message and "unavailable" in message
    assert references.load("torch").NAME == "torch"
    assert references.available() == ["torch"]


@grid
def test_torch_instrumented_twin_agrees_with_the_official_lstm_on_outputs_and_totals(spec, normwise):
    """The twin's per-step values add up to the official nn.LSTM's: outputs, final state, the gradient of every
    parameter (the sum of the per-step contributions), and dL/dh0, dL/dc0 (what enters step 0)."""
    problem, _ = problems(spec, "float64")
    twin, authority = references.load("torch").trace(problem), official(problem)
    summed = {name: sum(twin.step_param_grads(t, problem.inputs)[name] for t in range(spec.steps))
              for name in handrolled.PARAM_NAMES}
    errors = {"outputs": normwise(twin.forward["y"], authority.outputs),
              "h_last": normwise(twin.forward["h"][-1], authority.h_last),
              "c_last": normwise(twin.forward["c"][-1], authority.c_last),
              "dh0": normwise(twin.backward["dh_prev"][0], authority.dh0),
              "dc0": normwise(twin.backward["dc_prev"][0], authority.dc0),
              **{f"d{name}": normwise(summed[name], authority.grads[name]) for name in handrolled.PARAM_NAMES}}
    assert_all_within(errors, FLOAT64_TOLERANCE, "torch instrumented sums against torch official")
