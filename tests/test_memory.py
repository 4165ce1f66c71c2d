"""What keeps the comparison's memory down changes no figure: forward runs measured as they go (in batches of any
size), a gate's tolerance chosen once every run is done, traces without d*_next, the torch twin stacked a few
steps at a time, freed memory given back."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import lstm_compare
from lstm_compare import Config, ProblemSpec
from lstm_compare.modes import backward, forward, pipeline
from lstm_compare.modes.collect import Collector
from lstm_compare.measuring.measure import expectation, measure, tensor_diff
from lstm_compare.lstm.where import Where
from lstm_compare.measuring.tolerance import tolerance_for
from lstm_compare.references import torch_lstm
from lstm_compare.references.memory import release_free_memory
from lstm_compare.lstm.records import grads_entering_later_steps
from helpers import write_impl

O_TANH = ("np.tanh(g_pre), sigmoid(o_pre)", "np.tanh(g_pre), np.tanh(o_pre)")


def diff_arrays(report):
    return [(d.reference, d.mode, d.phase, d.tensor, d.shape, d.n_total,
             *(getattr(d, f) for f in ("steps", "max_abs_err", "max_rel_err", "worst_index", "actual", "expected",
                                       "n_mismatch", "tolerance", "noise_floor", "diverged")))
            for d in report.diffs]


def assert_same_reports(a, b):
    assert (a.findings, a.failures, a.skipped, a.notes) == (b.findings, b.failures, b.skipped, b.notes)
    rows_a, rows_b = diff_arrays(a), diff_arrays(b)
    assert len(rows_a) == len(rows_b)
    for row_a, row_b in zip(rows_a, rows_b):
        assert row_a[:6] == row_b[:6]
        for x, y in zip(row_a[6:], row_b[6:]):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_forward_measured_one_step_at_a_time_gives_the_same_report(tmp_path, monkeypatch, dtype):
    impl = write_impl(tmp_path, "o_tanh", O_TANH)
    config = Config(spec=ProblemSpec(steps=9, dtype=dtype))
    whole = lstm_compare.run(impl, config)
    monkeypatch.setattr(forward, "FORWARD_ELEMENTS_PER_BATCH", 1)
    stepwise = lstm_compare.run(impl, config)
    assert whole.diverged
    assert_same_reports(whole, stepwise)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tolerance_changed_after_the_fact_has_expectations_bits(dtype):
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((7, 11))
    same = (truth + 1e-6 * rng.standard_normal((7, 11))).astype(dtype)
    table = tolerance_for(dtype)
    for other in (forward.probe_tolerance(table), tolerance_for(np.float64), tolerance_for(np.float32)):
        mine = forward.retolerated(expectation(truth, same, table), other)
        theirs = expectation(truth, same, other)
        for field in ("truth", "scale", "noise_floor", "tolerance"):
            np.testing.assert_array_equal(getattr(mine, field), getattr(theirs, field), strict=True)


def test_a_gate_seen_by_saturation_after_its_first_steps_were_measured_gets_the_probes_tolerance(monkeypatch):
    """``Binding.probed`` may grow while a run goes: the gate's figures are those of measuring every step at the
    end, with the tolerance the final ``probed`` gives it."""
    monkeypatch.setattr(forward, "FORWARD_ELEMENTS_PER_BATCH", 1)  # one step per batch
    rng = np.random.default_rng(1)
    T, table = 6, tolerance_for(np.float32)
    truth = {name: rng.random((T, 4)) for name in ("f", "c")}
    expected = {name: expectation(t, t.astype(np.float32), table) for name, t in truth.items()}
    steps = [{name: (t[k] + 3e-6 * rng.standard_normal(4)).astype(np.float32) for name, t in truth.items()}
             for k in range(T)]
    binding = SimpleNamespace(probed=set())
    stream = forward.ForwardStream(binding, [(SimpleNamespace(name="torch", tolerance=table), expected)])
    for k, tensors in enumerate(steps):
        if k == 3:
            binding.probed.add("f")
        stream(tensors)
    stream.finish()
    diffs = {d.tensor: d for d in stream.diffs("torch", "chained", Collector())}
    probe = forward.probe_tolerance(table)
    for name, tolerance in (("f", probe), ("c", table)):
        actual = np.stack([s[name] for s in steps])
        whole = tensor_diff(Where("torch", "chained", "forward", name), (4,), np.arange(T),
                            [measure(actual, forward.retolerated(expected[name], tolerance))])
        for field in ("max_abs_err", "worst_index", "n_mismatch", "tolerance", "diverged"):
            np.testing.assert_array_equal(getattr(diffs[name], field), getattr(whole, field), strict=True)
    assert (diffs["f"].tolerance > expected["f"].tolerance).all()  # the probe's slack, on the early steps too


def test_the_isolated_mode_feeds_the_next_steps_d_prev_as_d_next():
    rng = np.random.default_rng(2)
    for shape in ((5, 3), (5, 2, 3)):
        d_prev = rng.standard_normal(shape).astype(np.float32)
        with_next = {"dh_prev": d_prev, "dh_next": grads_entering_later_steps(d_prev)}
        for t in range(shape[0]):
            mine, theirs = backward.fed_next({"dh_prev": d_prev}, "h", t), backward.fed_next(with_next, "h", t)
            np.testing.assert_array_equal(mine, theirs, strict=True)


def test_the_twin_stacked_a_few_steps_at_a_time_is_torch_stack(monkeypatch):
    monkeypatch.setattr(torch_lstm, "STACK_STEPS", 3)
    generator = torch.Generator().manual_seed(3)
    columns = {"a": [torch.randn(4, generator=generator, dtype=torch.float64) for _ in range(8)],
               "b": [torch.randn(2, 5, generator=generator) for _ in range(8)]}
    expected = {name: torch.stack(values).numpy().copy() for name, values in columns.items()}
    stacked = torch_lstm._stacked_columns(columns)
    for name in columns:
        np.testing.assert_array_equal(stacked[name], expected[name], strict=True)
        assert columns[name] == [None] * 8  # let go as they were copied


def test_giving_freed_memory_back_changes_nothing():
    kept = np.arange(10.0)
    release_free_memory(0)
    release_free_memory(1 << 40)
    np.testing.assert_array_equal(kept, np.arange(10.0))


def test_large_problems_trace_jax_first_and_small_ones_in_the_order_given():
    small = lstm_compare.make_problem(ProblemSpec(steps=100, hidden=64, inputs=8))
    large = lstm_compare.make_problem(ProblemSpec(steps=3000, hidden=512, inputs=8))
    assert pipeline.trace_order(("torch", "jax"), small) == ["torch", "jax"]
    assert pipeline.trace_order(("torch", "numeric", "jax"), large) == ["jax", "torch", "numeric"]
