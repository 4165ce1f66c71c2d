"""examples/seed_question: the training converges, the question's check fails only because of the reused state,
and the numbers the example prints (the 1e-7 misses, the dy factor, the wrap-around target) hold.

The example's functions run in-process, with a shorter training (600 iterations instead of 3000) to keep this fast.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lstm_compare import Config, ProblemSpec, run
from lstm_compare.references.numeric import RTOL

RUN_PY = Path(__file__).resolve().parents[1] / "examples" / "seed_question" / "run.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("seed_question_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(example):
    return example.train(iterations=600)


@pytest.fixture(scope="module")
def window(example):
    return example.check_window(example.SEED)


def test_the_ema_loss_decreases_during_training(trained):
    (first_iteration, first), *_, (last_iteration, last) = trained.ema
    assert (first_iteration, last_iteration) == (0, 599)
    assert first == pytest.approx(1.1242, abs=1e-4)  # the EMA starts at 1 and takes 1% of the first loss
    assert last < 0.4 * first


def test_the_questions_check_fails_only_because_the_final_state_is_reused(example, trained, window):
    reused = example.numerical_check(trained.params, *window, reuse_final_state=True)
    corrected = example.numerical_check(trained.params, *window, reuse_final_state=False)
    assert len(reused.entries) == 146
    assert np.median(reused.question_error) > 1e-2 and np.max(reused.error) > 0.5
    assert np.mean(reused.question_error > example.QUESTION_TOLERANCE) > 0.9
    np.testing.assert_array_equal(reused.analytic, corrected.analytic)  # the same analytic gradient in both
    assert np.max(corrected.question_error) < 1e-6 and np.max(corrected.error) < RTOL


def test_the_1e7_threshold_misses_about_two_percent_of_correct_entries(example):
    share, worst, total = example.threshold_misses()
    assert total == 730
    assert share == pytest.approx(15 / 730, abs=3 / 730)  # printed: 2.1%
    assert 1e-7 < worst < 1e-5  # printed: 1.8e-06


def test_the_trained_gradient_agrees_with_pytorch_and_jax(example, trained, window):
    worst = example.against_frameworks(trained.params, *window)
    assert set(worst) == {"torch", "jax"} and max(worst.values()) < 1e-12


def test_the_questions_dy_is_right_for_one_output_and_found_in_sequence_mode_for_three(example):
    def sequence_report(outputs):
        spec = ProblemSpec(steps=12, inputs=1, hidden=5, outputs=outputs, seed=example.SEED)
        return run(example.question_dy_module(), Config(spec=spec, references=("torch", "jax"), modes=("sequence",)))

    assert not sequence_report(1).diverged
    findings = sequence_report(3).findings
    assert [(f.reference, f.mode, f.phase, f.step, f.tensor) for f in findings] == \
        [("torch", "sequence", "backward", None, "dWy"), ("jax", "sequence", "backward", None, "dWy")]
    assert findings[0].actual == pytest.approx(1.71314, rel=1e-5)
    assert findings[0].actual == pytest.approx(3 * findings[0].expected)  # dy too large by O = 3


def test_the_wraparound_target_dominates_the_trained_loss(example, trained, window):
    inputs, targets = window
    assert targets[0, 0] == inputs[-1, 0]
    losses = example.step_losses(trained.params, inputs, targets, np.zeros(5), np.zeros(5))
    assert losses[0] > 0.5 * losses.sum() and losses[0] > 100 * losses[1:].mean()


def test_a_random_initial_state_moves_the_loss_of_the_same_window(example, trained, window):
    zero, drawn = example.random_state_losses(trained.params, *window)
    assert drawn.shape == (20,) and drawn.max() - drawn.min() > 0.1 * zero
