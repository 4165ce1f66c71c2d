"""The variant bug catalog: every bug's mutation applies once, changes the model's numbers, and is located by both
references exactly where its ``Location`` says: mode, phase, step, tensor, layer and direction."""

import numpy as np
import pytest

import lstm_compare.handrolled.variant_lstm as correct
from lstm_compare.catalogs.catalog import check
from lstm_compare.catalogs.variants import VARIANTS
from lstm_compare.lstm.problem import make_model_problem

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
    assert all(bug.base == "lstm_compare.handrolled.variant_lstm" and not bug.spec.model.plain for bug in VARIANTS)


@pytest.mark.parametrize("bug", VARIANTS, ids=IDS)
def test_every_variant_bug_changes_the_models_numbers(bug):
    problem = make_model_problem(bug.spec)
    mine, truth = run_model(bug.module(), problem), run_model(correct, problem)
    assert mine.keys() == truth.keys()
    assert [name for name in truth if changed(mine[name], truth[name])], f"{bug.name} changes nothing"


@pytest.mark.parametrize("bug", VARIANTS, ids=IDS)
def test_every_variant_bug_is_located_by_both_references_at_its_layer_direction_step_and_tensor(bug):
    result = check(bug)
    assert result.found == {"torch": result.expected, "jax": result.expected}, result.found
