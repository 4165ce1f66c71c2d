"""The noise rule covers how a correct implementation may sum (issue 20, item 1): a float32 loss added step by step
over a long sequence drifts from the truth further than a reference's pairwise sum does, and is still correct."""

import numpy as np

from lstm_compare.measuring.measure import expectation, measure, widened
from lstm_compare.measuring.tolerance import tolerance_for
from lstm_compare.modes.sequence import stepwise_loss

T = 50000  # long enough that a float32 running sum drifts past a pairwise sum's allowance


def test_a_loss_summed_step_by_step_in_float32_is_within_tolerance_and_a_loop_bug_is_not():
    rng = np.random.default_rng(1)
    y64, targets64 = rng.normal(size=(T, 1, 3)), rng.normal(size=(T, 1, 3))
    y32, targets32 = y64.astype(np.float32), targets64.astype(np.float32)
    truth = np.array([((y32.astype(np.float64) - targets32) ** 2).mean(axis=-1).sum()])
    per_step = ((y32 - targets32) ** 2).mean(axis=-1, dtype=np.float32).sum(axis=1, dtype=np.float32)
    pairwise = np.array([per_step.sum(dtype=np.float32)])  # as a reference sums it
    running = np.float32(0)
    for value in per_step:  # as the user's loop sums it
        running = np.float32(running + value)
    tolerance = tolerance_for(np.float32)
    plain = expectation(truth[None], pairwise[None], tolerance)
    assert measure(np.array([[running]]), plain)["diverged"].all()  # what issue 20 saw: a false divergence
    rule = widened(plain, stepwise_loss(y32, targets32)[None], tolerance)
    assert not measure(np.array([[running]]), rule)["diverged"].any()
    first_steps_left_out = np.array([[running - per_step[:100].sum()]])  # 0.2% of the loss: a loop bug
    assert measure(first_steps_left_out, rule)["diverged"].all()
