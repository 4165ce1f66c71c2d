"""The project's own LSTM, checked the way a person checks theirs: the ``lstm_compare`` fixture of the pytest plugin.

Each call must match torch and JAX in every mode, and (float64) keep each tensor's worst error within 10x of the
golden CSV in tests/baselines/ (``lstm_compare_baseline`` in pyproject.toml).  After an intended change in
accuracy, record them again with ``pytest tests/test_regression.py --lstm-compare-update-baseline``.
"""

from lstm_compare import handrolled


def test_handrolled_matches_and_keeps_its_float64_accuracy(lstm_compare):
    lstm_compare(handrolled, steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)


def test_handrolled_matches_in_float32_on_batches_from_a_zero_state(lstm_compare):
    # No baseline here: float32 errors vary more between CPUs and BLAS builds than a 10x margin safely absorbs;
    # the float32 tolerance and the references' noise floor are what this call checks.
    lstm_compare(handrolled, steps=12, hidden=5, inputs=3, outputs=1, dtype="float32", seed=0, batch=4,
                 zero_state=True, baseline=False)
