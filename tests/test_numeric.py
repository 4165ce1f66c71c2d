"""The finite-difference reference: its gradients against JAX's, its error measure, its size limits, and its use
as ``--reference numeric`` by the engine and the command line."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from lstm_compare import handrolled
from lstm_compare import references
from lstm_compare import Config, ProblemSpec, make_problem, run
from lstm_compare.frontends.cli import main
from lstm_compare.references import numeric
from helpers import impl_module
from lstm_compare.lstm.records import BACKWARD_TENSORS, FORWARD_TENSORS, STATE_TENSORS

SPECS = [ProblemSpec(steps=7, hidden=3, inputs=2, outputs=2, seed=11),
         ProblemSpec(steps=4, hidden=4, inputs=1, outputs=1, batch=3, zero_state=True, seed=12)]


@pytest.fixture(scope="module", params=SPECS, ids=lambda s: s.label())
def traced(request):
    problem = make_problem(request.param)
    return problem, numeric.trace(problem), references.load("jax").trace(problem)


def within_tolerance(actual, expected):
    """Each step's tensor within the engine's rule for this reference: atol + rtol * max|expected|."""
    tol = numeric.TOLERANCE
    for a, e in zip(actual, expected):
        assert np.abs(a - e).max() <= tol.atol + tol.rtol * np.abs(e).max()


def test_forward_tensors_equal_jax_to_rounding(traced):
    _, trace, jax_trace = traced
    for name in FORWARD_TENSORS + STATE_TENSORS:
        np.testing.assert_allclose(trace.forward[name], jax_trace.forward[name], rtol=1e-12, atol=1e-14)


def test_every_per_step_gradient_is_within_the_declared_tolerance_of_jax(traced):
    _, trace, jax_trace = traced
    for name in BACKWARD_TENSORS:
        assert trace.backward[name].shape == jax_trace.backward[name].shape, name
        within_tolerance(trace.backward[name], jax_trace.backward[name])


def test_totals_are_within_the_declared_tolerance_of_jax(traced):
    problem, trace, jax_trace = traced
    assert trace.totals.loss == pytest.approx(jax_trace.totals.loss, rel=1e-13)
    for name, grad in jax_trace.totals.grads.items():
        within_tolerance(trace.totals.grads[name][None], grad[None])
        error = numeric.relative_error(grad, trace.totals.grads[name], numeric.floor_for(trace.totals.loss))
        assert np.max(error) < numeric.RTOL / 10, name
    for name in ("dinputs", "dh0", "dc0", "h_last", "c_last"):
        expected = getattr(jax_trace.totals, name)
        assert getattr(trace.totals, name).shape == expected.shape
        within_tolerance(getattr(trace.totals, name)[None], expected[None])


def test_a_float32_problem_is_traced_in_float64_with_the_same_values():
    spec = ProblemSpec(steps=3, hidden=2, inputs=1, outputs=1, dtype="float32", seed=5)
    truth = make_problem(spec)  # float32-rounded values held in float64
    single, double = numeric.trace(truth.astype(np.float32)), numeric.trace(truth)
    assert single.totals.grads["Wf"].dtype == np.float64
    np.testing.assert_array_equal(single.backward["dc_prev"], double.backward["dc_prev"])


def test_relative_error_takes_the_floor_for_tiny_gradients_and_fails_on_nan():
    error = numeric.relative_error([1.0, 1e-12, 0.0, np.nan, 1.0], [1.001, 3e-12, 0.0, 1.0, np.inf], floor=1e-3)
    np.testing.assert_allclose(error[:3], [0.001 / 2.001, 2e-12 / 1e-3, 0.0])
    assert np.isnan(error[3]) and np.isnan(error[4])
    assert numeric.floor_for(-250.0) == pytest.approx(0.025) and numeric.floor_for(0.01) == pytest.approx(1e-4)


def test_central_differences_of_a_cubic_and_the_parameters_restored_even_when_the_loss_raises():
    params = {"w": np.array([0.3, -2.0]), "b": np.array([5.0])}
    loss = lambda p: float(np.sum(p["w"] ** 3) + p["b"][0] ** 3)  # noqa: E731
    grads = numeric.central_differences(loss, params, [("w", 0), ("w", 1), ("b", 0)])
    # truncation d**2 f''' / 6 = 1e-10 and rounding eps |L| / d = 3e-9 (L near 117), both absolute
    np.testing.assert_allclose(grads, [0.27, 12.0, 75.0], rtol=1e-9, atol=1e-8)
    np.testing.assert_array_equal(params["w"], [0.3, -2.0])

    def raises(p):
        raise RuntimeError("user loss failed")

    with pytest.raises(RuntimeError):
        numeric.central_differences(raises, params, [("w", 1)])
    np.testing.assert_array_equal(params["w"], [0.3, -2.0])


def test_a_sequence_longer_than_the_limit_is_refused_in_one_sentence():
    with pytest.raises(numeric.TooLarge) as raised:
        numeric.trace(make_problem(ProblemSpec(steps=201, hidden=1, inputs=1)))
    message = str(raised.value)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, references.ReferenceRefused)
    assert "\n" not in message and "at most 200 steps" in message and "T=201" in message


def test_a_problem_over_the_work_limit_is_refused_with_the_figures():
    problem = make_problem(ProblemSpec(steps=100, hidden=64, inputs=8))
    with pytest.raises(numeric.TooLarge, match=r"needs 1\.4e\+11 multiply-adds .* limit of 5e\+09"):
        numeric.trace(problem)
    assert numeric.work(make_problem(ProblemSpec())) == 1_611_720  # report's default T=12 H=5 X=3 O=1


def test_report_with_numeric_on_a_problem_too_large_exits_2_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["report", "--reference", "numeric", "--steps", "201", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1 and err.startswith("lstm-compare: error: the numeric reference takes at most 200")
    assert not (tmp_path / "out").exists()


def test_numeric_is_registered_by_name_but_not_a_default_reference():
    assert references.MODULES["numeric"] == "lstm_compare.references.numeric"
    assert references.REFERENCES == ("torch", "jax")
    assert references.load("numeric").NAME == "numeric"


def test_numeric_imports_neither_compare_nor_handrolled():
    tree = ast.parse(Path(inspect.getsourcefile(numeric)).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"dataclasses", "numpy", "lstm_compare.references", "lstm_compare.references.layout", "lstm_compare.lstm.records", "typing"}


def test_engine_against_numeric_passes_handrolled_and_locates_a_forget_gate_bug():
    spec = ProblemSpec(steps=6, hidden=3, inputs=2, outputs=1, seed=3)
    assert not run(handrolled, Config(spec=spec, references=("numeric",))).diverged
    bug = impl_module("forget_bug", ("df_pre = dc * c_prev * f * (1 - f)", "df_pre = dc * c * f * (1 - f)"))
    report = run(bug, Config(spec=spec, references=("numeric",), modes=("isolated",)))
    (finding,) = report.findings
    assert (finding.reference, finding.mode, finding.phase, finding.step, finding.tensor) == \
        ("numeric", "isolated", "backward", 5, "dWf")
