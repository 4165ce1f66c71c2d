"""The model references (references/torch_model.py, jax_model.py, flax_model.py) and their layouts
(references/model_layout.py): stacked, bidirectional, projected and peephole models.

float64, per step and per tensor (max|a - b| / max|b| of each step's tensor), torch's instrumented twin against the
JAX scan; totals of the twin, the scan and flax against the official torch.nn.LSTM.  Peephole models have no
official: there the twin and the scan are the two independent references, and central differences on the loss
pin the sign of the peephole gradients.  JAX compiles once per model and shape, so the shapes are few and small
and each run is shared by the tests through ``run``.
"""

import dataclasses
import importlib.util
import functools
import subprocess
import sys

import numpy as np
import pytest
import torch

from lstm_compare.lstm.problem import ProblemSpec, make_model_problem, make_problem
from lstm_compare.references import MODEL_MODULES, ReferenceUnavailable, jax_lstm, jax_model, load_model, torch_lstm, torch_model
from lstm_compare.lstm.model import Model, ModelProblem, ModelTrace, Slot, as_cell_trace, slot_index
from lstm_compare.references.model_layout import (NoEquivalent, flax_to_model, model_to_flax, model_to_torch, torch_keys,
                                     torch_to_model)

TOLERANCE = 1e-12  # the gate; measured over this grid, batched and unbatched: worst 5.2e-15 (float64)
H, X, O, T, B = 4, 3, 2, 4, 2
GRID = [Model(layers, bidirectional, proj)
        for layers in (1, 2, 3) for bidirectional in (False, True) for proj in (0, 2)]
UNBATCHED = [Model(), Model(2, True, 2)]  # the same checks without a batch axis
PEEPHOLES = Model(2, True, peepholes=True)
CELLS = [(model, B) for model in GRID] + [(model, None) for model in UNBATCHED]


def ident(cell):
    model, batch = cell
    return f"{model.describe().replace(', ', '-').replace(' ', '')}-{'B2' if batch else 'unbatched'}"


HAS_FLAX = importlib.util.find_spec("flax") is not None  # an optional extra: .venv has it, .venv-lower not
needs_flax = pytest.mark.skipif(not HAS_FLAX, reason="flax (the optional extra) is not installed")


@dataclasses.dataclass(frozen=True)
class Runs:
    problem: ModelProblem
    twin: ModelTrace  # the torch twin, its own totals
    scan: ModelTrace  # the JAX scan, its own totals
    official: object  # torch.nn.LSTM's ModelTotals, or None for peepholes
    flax: object  # flax's ModelTotals, or None where flax lacks the model


@functools.cache
def run(model, batch, dtype="float64"):
    problem = make_model_problem(ProblemSpec(steps=T, hidden=H, inputs=X, outputs=O, batch=batch, seed=11,
                                             model=model)).astype(dtype)
    official = None if model.peepholes else torch_model.official_model(problem)
    flax = None
    if HAS_FLAX and not (model.peepholes or model.proj):
        from lstm_compare.references import flax_model
        flax = flax_model.official_model(problem)
    return Runs(problem, torch_model.twin_model(problem), jax_model.scan_model(problem), official, flax)


def per_step(normwise, actual, expected):
    """The worst norm-wise error over the steps of a (T, ...) tensor, each step on its own scale."""
    return max(normwise(a, b) for a, b in zip(actual, expected))


def totals_error(normwise, actual, expected):
    """The worst norm-wise error over every field of two ModelTotals, by name."""
    errors = {"loss": abs(actual.loss - expected.loss) / abs(expected.loss)}
    for field in ("outputs", "h_last", "c_last", "dinputs", "dh0", "dc0"):
        errors[field] = normwise(getattr(actual, field), getattr(expected, field))
    assert list(actual.grads) == list(expected.grads)
    errors.update({f"d{name}": normwise(actual.grads[name], expected.grads[name]) for name in expected.grads})
    return errors


def slot_errors(normwise, actual, expected):
    """Per slot and tensor, the worst per-step error of one trace's records against another's."""
    errors = {}
    assert list(actual.slots) == list(expected.slots) == list(expected.model.slots())
    for slot, a in actual.slots.items():
        e = expected.slots[slot]
        assert set(a.forward) == set(e.forward) and set(a.backward) == set(e.backward)
        errors[(slot, "inputs")] = per_step(normwise, a.inputs, e.inputs)
        for name in e.forward:
            errors[(slot, name)] = per_step(normwise, a.forward[name], e.forward[name])
        for name in e.backward:
            errors[(slot, name)] = per_step(normwise, a.backward[name], e.backward[name])
    return errors


def assert_within(errors, tolerance=TOLERANCE):
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tolerance, f"{worst}: {errors[worst]:.2e} > {tolerance:.0e}"


@pytest.mark.parametrize("cell", CELLS, ids=ident)
def test_twin_and_scan_agree_per_step_and_with_the_official_totals(cell, normwise):
    runs = run(*cell)
    assert_within(slot_errors(normwise, runs.scan, runs.twin))
    assert_within(totals_error(normwise, runs.twin.totals, runs.official))
    assert_within(totals_error(normwise, runs.scan.totals, runs.official))
    if runs.flax is not None:
        assert_within(totals_error(normwise, runs.flax, runs.official))
        assert_within(totals_error(normwise, runs.scan.totals, runs.flax))


@pytest.mark.parametrize("cell", CELLS[:4], ids=ident)
def test_trace_model_takes_its_totals_from_the_authority(cell):
    runs = run(*cell)
    torch_trace = torch_model.trace_model(runs.problem)
    assert torch_trace.totals.loss == runs.official.loss
    assert all(np.array_equal(torch_trace.totals.grads[k], v) for k, v in runs.official.grads.items())
    jax_trace = jax_model.trace_model(runs.problem)
    authority = runs.flax or runs.scan.totals  # flax where it has the model, else the scan's own
    assert jax_trace.totals.loss == authority.loss
    assert all(np.array_equal(jax_trace.totals.grads[k], v) for k, v in authority.grads.items())


def test_jax_falls_back_to_the_scan_totals_without_flax(monkeypatch):
    runs = run(Model(2, True), B)
    monkeypatch.setitem(sys.modules, "lstm_compare.references.flax_model", None)  # `import` now raises ImportError
    totals = jax_model.trace_model(runs.problem).totals
    assert totals.loss == runs.scan.totals.loss
    assert all(np.array_equal(totals.grads[k], v) for k, v in runs.scan.totals.grads.items())


def test_peephole_twin_and_scan_are_two_references_that_agree(normwise):
    runs = run(PEEPHOLES, B)
    assert_within(slot_errors(normwise, runs.scan, runs.twin))
    assert_within(totals_error(normwise, runs.scan.totals, runs.twin.totals))
    with pytest.raises(NoEquivalent, match="no torch key"):
        torch_model.official_model(runs.problem)
    assert torch_model.trace_model(runs.problem).totals.loss == runs.twin.totals.loss


def loss_at(problem, name, index, delta):
    """The model's loss with one entry of a parameter (or of h0) moved by ``delta`` (the twin's forward)."""
    if name == "h0":
        h0 = problem.h0.copy()
        h0[index] += delta
        problem = dataclasses.replace(problem, h0=h0)
    else:
        value = problem.params[name].copy()
        value[index] += delta
        problem = dataclasses.replace(problem, params={**problem.params, name: value})
    return torch_model.twin_model(problem).totals.loss


def assert_central_differences(runs, entries, eps=1e-5):
    """Each entry's gradient, in both references' totals, against central differences on the loss."""
    for name, index in entries:
        numeric = (loss_at(runs.problem, name, index, eps) - loss_at(runs.problem, name, index, -eps)) / (2 * eps)
        for totals in (runs.twin.totals, runs.scan.totals):
            analytic = totals.dh0[index] if name == "h0" else totals.grads[name][index]
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-9), (name, index)
            assert abs(analytic) > 1e-4, (name, index)  # an entry large enough for its sign to be tested


def largest(array, count=2):
    """The indices of ``array``'s ``count`` largest entries in magnitude."""
    flat = np.argsort(-np.abs(array), axis=None)[:count]
    return [np.unravel_index(i, array.shape) for i in flat]


def test_peephole_gradients_match_central_differences():
    runs = run(PEEPHOLES, B)
    names = [f"p{gate}{slot.suffix}" for slot in PEEPHOLES.slots() for gate in "fio"]
    assert_central_differences(runs, [(name, index) for name in names
                                      for index in largest(runs.twin.totals.grads[name], 1)])


def test_projection_and_initial_state_gradients_match_central_differences():
    model = Model(2, True, 2)
    runs = run(model, B)
    entries = [(f"Wr{slot.suffix}", index) for slot in model.slots()
               for index in largest(runs.official.grads[f"Wr{slot.suffix}"])]
    assert_central_differences(runs, entries + [("h0", index) for index in largest(runs.official.dh0, 4)])


@pytest.mark.parametrize("cell", [(Model(3, True, 2), B), (Model(2, True, 2), None), (PEEPHOLES, B)], ids=ident)
@pytest.mark.parametrize("which", ["twin", "scan"])
def test_per_step_records_add_up_to_each_slots_totals(cell, which, normwise):
    runs = run(*cell)
    trace, problem = getattr(runs, which), runs.problem
    for slot in problem.model.slots():
        k, st = slot_index(problem.model, slot), trace.slots[slot]
        cell_trace = as_cell_trace(trace, problem, slot)
        summed = {name: grads.sum(axis=0) for name, grads in
                  cell_trace.param_grads_at(np.arange(problem.steps), st.inputs).items()}
        errors = {name: normwise(summed[name], cell_trace.totals.grads[name]) for name in problem.model.cell_params()}
        assert_within(errors)
        assert set(summed) - set(problem.model.cell_params()) == {"Wy", "by"}
        back = st.backward
        assert np.array_equal(back["dh_next"][:-1], back["dh_prev"][1:]) and not back["dh_next"][-1].any()
        assert np.array_equal(back["dc_next"][:-1], back["dc_prev"][1:]) and not back["dc_next"][-1].any()
        assert normwise(back["dh"], back["dh_out"] + back["dh_next"]) <= TOLERANCE
        assert normwise(back["dh_prev"][0], trace.totals.dh0[k]) <= TOLERANCE
        assert normwise(back["dc_prev"][0], trace.totals.dc0[k]) <= TOLERANCE
        assert normwise(st.forward["h"][-1], trace.totals.h_last[k]) <= TOLERANCE


def layer_outputs(trace, layer):
    """The layer's outputs in time order: its directions' h concatenated, forward first."""
    slots = [slot for slot in trace.model.slots() if slot.layer == layer]
    return np.concatenate([trace.slots[s].forward["h"][::-1] if s.reverse else trace.slots[s].forward["h"]
                           for s in slots], axis=-1)


@pytest.mark.parametrize("which", ["twin", "scan"])
def test_the_reverse_direction_reads_its_layer_input_from_the_last_step_to_the_first(which):
    runs = run(Model(3, True, 2), B)
    trace, problem = getattr(runs, which), runs.problem
    layer_input = problem.inputs
    for layer in (1, 2, 3):
        assert np.array_equal(trace.slots[Slot(layer)].inputs, layer_input)
        assert np.array_equal(trace.slots[Slot(layer, "reverse")].inputs, layer_input[::-1])
        layer_input = layer_outputs(trace, layer)
    dx = trace.slots[Slot(1)].backward["dx"] + trace.slots[Slot(1, "reverse")].backward["dx"][::-1]
    assert np.allclose(dx, trace.totals.dinputs, rtol=0, atol=1e-14)
    # The head reads the last layer's outputs: its dh_out at time t is dy_t @ Wy.T, forward rows then reverse rows.
    dy = 2 * (trace.totals.outputs - problem.targets) / O
    dh_out = dy @ problem.params["Wy"].T
    S = problem.model.state_size(H)
    assert np.allclose(trace.slots[Slot(3)].backward["dh_out"], dh_out[..., :S], rtol=0, atol=1e-14)
    assert np.allclose(trace.slots[Slot(3, "reverse")].backward["dh_out"], dh_out[::-1, ..., S:], rtol=0, atol=1e-14)


@pytest.mark.parametrize("batch", [B, None], ids=["B2", "unbatched"])
def test_one_plain_layer_equals_the_single_cell_references(batch, normwise):
    runs = run(Model(), batch)
    problem = runs.problem
    single = dataclasses.replace(make_problem(ProblemSpec(steps=T, hidden=H, inputs=X, outputs=O, batch=batch)),
                                 params={name.removesuffix("_l1"): value for name, value in problem.params.items()},
                                 inputs=problem.inputs, targets=problem.targets, h0=problem.h0[0], c0=problem.c0[0])
    for model_totals, cell in ((runs.official, torch_lstm.trace(single)), (runs.scan.totals, jax_lstm.trace(single))):
        cell_totals = dataclasses.replace(cell.totals, h_last=cell.totals.h_last[None], c_last=cell.totals.c_last[None],
                                          dh0=cell.totals.dh0[None], dc0=cell.totals.dc0[None],
                                          grads={name: cell.totals.grads[name.removesuffix("_l1")]
                                                 for name in Model().param_names()})
        assert_within(totals_error(normwise, model_totals, cell_totals))


VARIANTS = GRID + [PEEPHOLES, Model(1, False, 2, True)]


@pytest.mark.parametrize("model", VARIANTS, ids=lambda m: m.describe().replace(", ", "-").replace(" ", ""))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layouts_round_trip_exactly(model, dtype):
    params = make_model_problem(ProblemSpec(hidden=H, inputs=X, outputs=O, model=model)).astype(dtype).params

    def same(a, b):
        assert list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in b)

    if model.peepholes:
        for to in (model_to_torch, model_to_flax):
            with pytest.raises(NoEquivalent, match="peephole parameters"):
                to(model, params)
        return
    state = model_to_torch(model, params)
    same(torch_to_model(model, state), params)
    same(torch_to_model(model, state, gradient=True), params)
    rng = np.random.default_rng(0)
    drawn = {k: rng.normal(size=v.shape).astype(dtype) for k, v in state.items()}
    folded = {k: np.zeros_like(v) if "bias_hh" in k else v + drawn[k.replace("bias_ih", "bias_hh")]
              if "bias_ih" in k else v for k, v in drawn.items()}  # bias_hh folded into bias_ih
    same(model_to_torch(model, torch_to_model(model, drawn)), folded)
    gradient = {**drawn, **{k: drawn[k.replace("bias_hh", "bias_ih")] for k in drawn if "bias_hh" in k}}
    same(model_to_torch(model, torch_to_model(model, gradient, gradient=True)),
         {k: np.zeros_like(v) if "bias_hh" in k else v for k, v in gradient.items()})
    if model.proj:
        with pytest.raises(NoEquivalent, match="projection"):
            model_to_flax(model, params)
    else:
        same(flax_to_model(model, model_to_flax(model, params)), params)


@pytest.mark.parametrize("model", [Model(2, True, 2), Model(3)], ids=["2bi-P2", "3"])
def test_torch_keys_are_nn_lstms_own_in_its_order_and_shapes(model):
    lstm = torch.nn.LSTM(X, H, num_layers=model.layers, bidirectional=model.bidirectional, proj_size=model.proj)
    params = make_model_problem(ProblemSpec(hidden=H, inputs=X, outputs=O, model=model)).params
    state = model_to_torch(model, params)
    assert list(lstm.state_dict()) == list(torch_keys(model))
    assert {k: tuple(v.shape) for k, v in lstm.state_dict().items()} == {k: state[k].shape for k in torch_keys(model)}
    assert np.array_equal(state["weight_hr_l1_reverse" if model.proj else "weight_ih_l2"],
                          params["Wr_l2_reverse"].T if model.proj else
                          np.concatenate([params[f"W{g}_l3"][:H] for g in "ifgo"], axis=1).T)


def test_flax_tree_is_flax_lstm_cells_own():
    flax = pytest.importorskip("flax.linen")
    import jax

    model = Model(2, True)
    tree = model_to_flax(model, make_model_problem(ProblemSpec(hidden=H, inputs=X, outputs=O, model=model)).params)
    for slot in model.slots():
        In = model.input_size(slot.layer, X, H)
        cell, carry = flax.LSTMCell(H), (np.zeros(H), np.zeros(H))
        own = jax.eval_shape(cell.init, jax.random.key(0), carry, np.zeros(In))["params"]  # shapes only: no compile
        shapes = jax.tree_util.tree_map(np.shape, tree[f"cell{slot.suffix}"])
        assert shapes == jax.tree_util.tree_map(lambda a: a.shape, dict(own))


def test_float32_problems_run_in_float32(normwise):
    """The twin, the scan, flax and the official torch, each in float32, near the float64 truth."""
    model = Model(1, True)
    truth, runs = run(model, B), run(model, B, dtype="float32")
    peephole = torch_model.twin_model(run(PEEPHOLES, B).problem.astype(np.float32))  # its twin is torch's reference
    for trace in (runs.twin, runs.scan, torch_model.trace_model(runs.problem), jax_model.trace_model(runs.problem),
                  peephole):
        arrays = [a for st in trace.slots.values() for a in (st.inputs, *st.forward.values(), *st.backward.values())]
        arrays += [*trace.totals.grads.values(), trace.totals.outputs, trace.totals.dinputs, trace.totals.dh0]
        assert {a.dtype for a in arrays} == {np.dtype(np.float32)}
        expected = (run(PEEPHOLES, B) if trace is peephole else truth).twin.totals.grads["Wf_l1"]
        assert normwise(trace.totals.grads["Wf_l1"], expected) <= 1e-5
    assert runs.flax is None or runs.flax.grads["Wf_l1"].dtype == np.float32
    assert runs.official.grads["Wf_l1"].dtype == np.float32


@needs_flax
def test_importing_flax_changes_no_jax_setting_and_the_scope_is_undone():
    code = ("import jax; before = dict(jax.config.values); import lstm_compare.references.flax_model; "
            "after = dict(jax.config.values); print(sorted(k for k in before.keys() | after.keys() "
            "if before.get(k, 'absent') != after.get(k, 'absent')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]
    import jax

    run(Model(), B)
    assert not jax.config.jax_enable_x64


def test_load_model_mirrors_load(monkeypatch):
    assert set(MODEL_MODULES) == {"torch", "jax"}
    assert load_model("torch") is torch_model and load_model("jax") is jax_model
    with pytest.raises(ReferenceUnavailable, match="reference 'numeric' does not run model variants"):
        load_model("numeric")
    monkeypatch.setitem(sys.modules, "lstm_compare.references.jax_model", None)
    with pytest.raises(ReferenceUnavailable, match="reference 'jax' is unavailable"):
        load_model("jax")


def test_slots_sort_in_data_flow_order_and_name_a_real_direction():
    model = Model(2, True)
    assert sorted(reversed(model.slots())) == list(model.slots())
    assert Slot(1, "reverse") < Slot(2, "forward") and Slot(1, "forward") < Slot(1, "reverse")
    with pytest.raises(ValueError, match="not 'backward'"):
        Slot(1, "backward")  # type: ignore[arg-type]  # the phase's word, not a direction's
