"""The JAX reference computes in float64 whatever the process-wide JAX setting, and changes no setting itself."""

import contextlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.references import jax_lstm


@pytest.fixture
def x64_turned_off():
    """What another imported module may do: turn 64-bit types off for the whole process."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", before)


def test_jax_reference_runs_in_float64_when_another_module_turned_x64_off(x64_turned_off):
    problem = make_problem(ProblemSpec(steps=3, hidden=2, inputs=1))
    trace = jax_lstm.trace(problem)
    assert trace.forward["h"].dtype == np.float64 and trace.totals.grads["Wf"].dtype == np.float64
    assert not jax.config.jax_enable_x64  # and the user's setting is left as it was


def test_jax_reference_refuses_to_return_results_computed_in_another_dtype(x64_turned_off, monkeypatch):
    monkeypatch.setattr(jax_lstm, "_enable_x64", lambda on: contextlib.nullcontext())  # as if the scope failed
    with pytest.raises(jax_lstm.WrongPrecision, match="ran in float32 instead of float64"):
        jax_lstm.trace(make_problem(ProblemSpec(steps=2, hidden=2, inputs=1)))


def test_importing_the_plugin_and_the_references_changes_no_jax_setting():
    code = ("import jax; import lstm_compare.pytest_plugin, lstm_compare, lstm_compare.references.jax_lstm, lstm_compare.modes.pipeline; "
            "print(jax.config.jax_enable_x64)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"
