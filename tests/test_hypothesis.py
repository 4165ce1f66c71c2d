"""The ``lstm_compare`` fixture under hypothesis, as the README's pytest section shows it: ``deadline=None`` (a
comparison takes longer than hypothesis's 200 ms), the function-scoped fixture allowed, no baseline per example."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lstm_compare.handrolled.question_lstm
from lstm_compare.catalogs.catalog import CATALOG

SEED_FILE = lstm_compare.handrolled.question_lstm.__file__
FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")
EXAMPLES = settings(deadline=None, max_examples=3, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 4), batch=st.sampled_from([None, 2]))
def test_the_tools_own_lstm_matches_on_any_drawn_problem(lstm_compare, seed, steps, batch):
    lstm_compare(SEED_FILE, seed=seed, steps=steps, batch=batch, references=["torch"], baseline=False)


def test_a_bug_fails_every_example_of_hypothesis(tmp_path, lstm_compare):
    path = FORGET_BUG.write(tmp_path)

    @EXAMPLES
    @given(seed=st.integers(0, 2**32 - 1))
    def check(seed):
        lstm_compare(path, seed=seed, steps=2, references=["torch"], modes=["isolated"], baseline=False)

    with pytest.raises(AssertionError, match="backward step 1, gate f, tensor dWf"):
        check()
