"""The variant bug catalog: every bug's mutation applies once, changes the model's numbers, and (by the model's
own numbers, before the engine compares variants) first changes them where its ``Location`` says."""

import numpy as np
import pytest

import handrolled.variant_lstm as correct
from compare.catalog import Location
from compare.catalog_variants import VARIANTS
from compare.problem import make_model_problem
from references.cell import BACKWARD_ORDER, FORWARD_ORDER
from references.model import slot_params

IDS = [bug.name for bug in VARIANTS]
CHANGED = 1e-8  # a difference this large (norm-wise) is a change, not rounding


def run_model(module, problem):
    """Everything the whole-model functions return, by name."""
    outputs, loss, hs, cs, caches = module.lstm_model_loss(problem.params, problem.h0, problem.c0, problem.inputs,
                                                           problem.targets)
    dparams, dinputs, dh0, dc0 = module.dlstm_model_loss(problem.params, problem.inputs, problem.targets, outputs,
                                                         caches)
    return {"outputs": outputs, "loss": np.array(loss), "hs": hs, "cs": cs, "dinputs": dinputs, "dh0": dh0,
            "dc0": dc0, **{f"d{name}": value for name, value in dparams.items()}}


def changed(a, b):
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
    return a.shape != b.shape or float(np.max(np.abs(a - b), initial=0.0)) / scale > CHANGED


def test_the_catalog_names_the_five_required_bugs_and_more():
    assert {"layer2_reads_cell_state", "reverse_outputs_not_flipped", "layer1_dh_missing_layer2",
            "forget_derivative_missing_peephole", "projection_grad_transposed"} <= set(IDS)
    assert len(VARIANTS) >= 7 and len(set(IDS)) == len(IDS)
    assert all(bug.base == "handrolled.variant_lstm" and not bug.spec.model.plain for bug in VARIANTS)


@pytest.mark.parametrize("bug", VARIANTS, ids=IDS)
def test_every_variant_bug_changes_the_models_numbers(bug):
    problem = make_model_problem(bug.spec)
    mine, truth = run_model(bug.module(), problem), run_model(correct, problem)
    assert mine.keys() == truth.keys()
    assert [name for name in truth if changed(mine[name], truth[name])], f"{bug.name} changes nothing"


def slot_arrays(model, hs, cs, slot, hidden):
    """One slot's (h, c) per step in its processing order, from hs/cs (L, T, [B,] D S) and (L, T, [B,] D H)."""
    d = model.directions.index(slot.direction)
    S = model.state_size(hidden)
    h = hs[slot.layer - 1][..., d * S:(d + 1) * S]
    c = cs[slot.layer - 1][..., d * hidden:(d + 1) * hidden]
    return (h[::-1], c[::-1]) if slot.reverse else (h, c)


def first_sequence_change(bug, problem):
    """Where the whole-model numbers first change: slots in data-flow order, forward (c, h per step) then backward
    (layer 1's dx per step as a single cell's, then each slot's totals, dh0, dc0), the slots in reverse."""
    model, H, T = problem.model, problem.hidden, problem.steps
    mine, truth = run_model(bug.module(), problem), run_model(correct, problem)
    for slot in model.slots():
        arrays = zip(slot_arrays(model, mine["hs"], mine["cs"], slot, H),
                     slot_arrays(model, truth["hs"], truth["cs"], slot, H))
        (h, h_ref), (c, c_ref) = arrays
        for step in range(T):
            for tensor, a, b in (("c", c, c_ref), ("h", h, h_ref)):
                if changed(a[step], b[step]):
                    return Location("sequence", "forward", step, tensor, slot.layer, slot.direction)
    for slot in reversed(model.slots()):
        if slot.layer == 1 and slot.direction == "forward":
            for t in reversed(range(T)):
                if changed(mine["dinputs"][t], truth["dinputs"][t]):
                    return Location("sequence", "backward", t, "dx", slot.layer, slot.direction)
        k = model.slots().index(slot)
        for tensor in BACKWARD_ORDER:
            key = tensor + slot.suffix
            if key in truth and changed(mine[key], truth[key]):
                return Location("sequence", "backward", None, tensor, slot.layer, slot.direction)
            if tensor in ("dh0", "dc0") and changed(mine[tensor][k], truth[tensor][k]):
                return Location("sequence", "backward", None, tensor, slot.layer, slot.direction)
    return None


def first_isolated_change(bug, problem, phase):
    """Where layer 1's cell functions first change: forward at step 0 (the cache's tensors in run order), or
    backward at the last step fed the correct forward's state, the loss's dy and zero dh_next, dc_next."""
    module, model = bug.module(), problem.model
    params = {**slot_params(model, problem.params, model.slots()[0]), "Wy": problem.params["Wy"],
              "by": problem.params["by"]}
    T = problem.steps
    h, c = problem.h0[0], problem.c0[0]
    for t in range(T if phase == "backward" else 1):
        x = problem.inputs[t]
        y, h_new, c_new, cache = correct.lstm(params, x, h, c)
        if phase == "forward":
            y2, _, _, mine = module.lstm(params, x, h, c)
            for tensor in FORWARD_ORDER:
                a, b = (y2, y) if tensor == "y" else (mine.get(tensor), cache.get(tensor))
                if b is not None and changed(a, b):
                    return Location("isolated", "forward", 0, tensor)
            return None
        if t < T - 1:
            h, c = h_new, c_new
    dy = 2 * (y - problem.targets[T - 1]) / y.shape[-1]
    zero_h, zero_c = np.zeros_like(h_new), np.zeros_like(c_new)
    mine_grads, dh, dc = module.dlstm(params, dy, zero_h, zero_c, module.lstm(params, x, h, c)[3])
    truth_grads, dh_ref, dc_ref = correct.dlstm(params, dy, zero_h, zero_c, cache)
    for tensor in BACKWARD_ORDER:
        name = tensor[1:]
        if name in truth_grads and changed(mine_grads[name], truth_grads[name]):
            return Location("isolated", "backward", T - 1, tensor)
    for tensor, a, b in (("dh_prev", dh, dh_ref), ("dc_prev", dc, dc_ref)):
        if changed(a, b):
            return Location("isolated", "backward", T - 1, tensor)
    return None


@pytest.mark.parametrize("bug", VARIANTS, ids=IDS)
def test_every_variant_bug_first_changes_the_numbers_at_its_expected_location(bug):
    problem = make_model_problem(bug.spec)
    expected = bug.expected.resolve(bug.spec.steps)
    if expected.mode == "sequence":
        found = first_sequence_change(bug, problem)
    else:
        found = first_isolated_change(bug, problem, expected.phase)
    assert found == expected
