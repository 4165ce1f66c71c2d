"""The pytest side, as a person uses it: a test file outside the project importing ``assert_lstm_matches``, and
the ``lstm_compare`` fixture with its options and baseline mode (run in-process by pytester)."""

import inspect

import pandas as pd
import pytest

import handrolled.seed_lstm
import references
from compare import UsageError, assert_lstm_matches
from compare.assertions import compare_lstm
from compare.baseline import baseline_frame, read_baseline, regressions, write_baseline
from compare.catalog import CATALOG

pytest_plugins = ["pytester"]

SEED_SOURCE = inspect.getsource(handrolled.seed_lstm)
FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")
# The cell update computed through a large offset: about seven bits lost, so every error downstream of c grows
# about 100x, yet stays far inside the float64 tolerance (rtol 1e-9).
CELL_UPDATE = "c = f * c_prev + i * g"
LOSSY_SOURCE = SEED_SOURCE.replace(CELL_UPDATE, "c = (f * c_prev + i * g + 100.0) - 100.0")

EXTERNAL_TEST = """
from compare import assert_lstm_matches

def test_my_lstm():
    assert_lstm_matches("{file}", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)
"""
FIXTURE_TEST = """
def test_accuracy(lstm_compare):
    lstm_compare("{file}", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)
"""


@pytest.fixture(autouse=True, scope="module")
def frameworks_imported_outside_pytester():
    """pytester's in-process runs drop the modules they import; torch and JAX must not be imported afresh."""
    assert references.available() == ["torch", "jax"]


@pytest.fixture
def person(pytester):
    """pytester, with a correct seed-convention file, its lossy twin and the forget-gate bug beside the tests."""
    assert SEED_SOURCE.count(CELL_UPDATE) == 1
    (pytester.path / "correct_lstm.py").write_text(SEED_SOURCE)
    (pytester.path / "lossy_lstm.py").write_text(LOSSY_SOURCE)
    FORGET_BUG.write(pytester.path)
    return pytester


def test_an_outside_test_file_passes_for_a_correct_seed_convention_file(person):
    person.makepyfile(EXTERNAL_TEST.format(file="correct_lstm.py"))
    person.runpytest().assert_outcomes(passed=1)


def test_an_outside_test_file_fails_naming_the_gate_and_step_of_the_forget_gate_bug(person):
    person.makepyfile(EXTERNAL_TEST.format(file="forget_derivative_uses_c.py"))
    result = person.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E *AssertionError: forget_derivative_uses_c.py does not match the references (T=12 H=5 X=3 O=1 float64 "
        "seed=0)!",
        "E *First divergence against torch, isolated mode: backward step 11, gate f, tensor dWf",
        "E *Mismatched elements: 40 / 40 (100.0%)",
        "E *Greatest absolute difference: * at index (*, *) (up to * allowed)",
        "E *Actual dWf[[]*, *[]] = *, expected *",
        "E *Full report: */divergence.csv (first_divergence.csv beside it)",
    ])
    assert "compare/engine.py" not in result.stdout.str()  # the user's test, not the harness, is what is shown


def test_assert_lstm_matches_names_a_missing_file_in_one_sentence(tmp_path):
    with pytest.raises(UsageError, match=r"^.*nope\.py does not exist or is not a file\.$"):
        assert_lstm_matches(tmp_path / "nope.py")


def test_assert_lstm_matches_writes_reports_to_report_dir_when_given(tmp_path):
    assert assert_lstm_matches(handrolled.seed_lstm, report_dir=tmp_path) is None
    first = pd.read_csv(tmp_path / "first_divergence.csv")
    assert first.empty and (tmp_path / "divergence.csv").is_file()


def test_the_lossy_cell_update_is_still_inside_tolerance():
    assert_lstm_matches(_module("lossy", LOSSY_SOURCE))


def test_the_fixture_records_a_baseline_then_fails_a_100x_accuracy_loss_inside_tolerance(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    person.runpytest("--lstm-compare-baseline", "baselines", "--lstm-compare-update-baseline").assert_outcomes(
        passed=1)
    golden = person.path / "baselines" / "test_accuracy.csv"
    assert golden.is_file()
    person.runpytest("--lstm-compare-baseline", "baselines").assert_outcomes(passed=1)

    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="lossy_lstm.py"))
    result = person.runpytest("--lstm-compare-baseline", "baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"E *AssertionError: LSTM accuracy regressed against the baseline {golden}: * tensor(s) grew more than "
        "10x, though still within tolerance.",
        "E *  torch isolated forward c: max rel err *, baseline * (*x; up to * allowed)",  # where the loss starts
        "E *If the change is intended, record a new baseline with --lstm-compare-update-baseline.",
    ])
    person.runpytest("--lstm-compare-baseline", "baselines", "--lstm-compare-factor", "1000").assert_outcomes(
        passed=1)


def test_the_fixture_without_a_recorded_baseline_fails_and_says_how_to_record_one(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    result = person.runpytest("--lstm-compare-baseline", "baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *AssertionError: no lstm-compare baseline at */baselines/test_accuracy.csv; "
                                 "record one with pytest --lstm-compare-update-baseline"])


def test_the_baseline_folder_can_come_from_the_ini_file(person):
    person.makeini("[pytest]\nlstm_compare_baseline = golden\n")
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    person.runpytest("--lstm-compare-update-baseline").assert_outcomes(passed=1)
    assert (person.path / "golden" / "test_accuracy.csv").is_file()


def test_the_fixture_fails_on_a_divergence_and_writes_reports_where_asked(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="forget_derivative_uses_c.py"))
    result = person.runpytest("--lstm-compare-reports", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *First divergence against torch, isolated mode: backward step 11, gate f, "
                                 "tensor dWf"])
    first = pd.read_csv(person.path / "out" / "test_accuracy" / "first_divergence.csv")
    assert set(first["tensor"]) >= {"dWf"}


def test_updating_a_baseline_without_a_folder_is_a_usage_error(person):
    result = person.runpytest("--lstm-compare-update-baseline")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lstm-compare-update-baseline needs --lstm-compare-baseline DIR*"])


def test_the_options_are_listed_in_pytest_help(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--lstm-compare-reports=DIR*", "*--lstm-compare-baseline=DIR*",
                                 "*--lstm-compare-update-baseline*", "*--lstm-compare-factor=F*"])


# --- the baseline check itself, without pytest in between ---

def test_regressions_lists_only_tensors_that_grew_past_the_factor(tmp_path):
    golden = write_baseline(compare_lstm(handrolled.seed_lstm), tmp_path / "golden.csv")
    baseline = read_baseline(golden)
    assert regressions(compare_lstm(handrolled.seed_lstm), baseline) == []
    found = regressions(compare_lstm(_module("lossy", LOSSY_SOURCE)), baseline)
    assert found and {r.tensor for r in found} >= {"c", "h", "y"}
    assert all(r.current > 10 * r.baseline for r in found)
    assert ("isolated", "f_pre") not in {(r.mode, r.tensor) for r in found}  # upstream of c, and fed exact states


def test_a_zero_baseline_still_allows_rounding_noise_and_a_missing_tensor_fails():
    report = compare_lstm(handrolled.seed_lstm)
    baseline = baseline_frame(report).astype({"max_rel_err": float})
    baseline["max_rel_err"] = 0.0
    assert regressions(report, baseline, factor=100) == []  # every error is below 100 float64 eps
    extra = baseline.iloc[:1].assign(tensor="dWz")
    [missing] = regressions(report, pd.concat([baseline, extra]), factor=100)
    assert missing.tensor == "dWz" and "no longer compared" in missing.describe()


def test_a_baseline_recorded_for_another_problem_is_refused():
    baseline = baseline_frame(compare_lstm(handrolled.seed_lstm, seed=1)).astype({"max_rel_err": float})
    with pytest.raises(ValueError, match="recorded for T=12 H=5 X=3 O=1 float64 seed=1, not .* seed=0"):
        regressions(compare_lstm(handrolled.seed_lstm), baseline)


def _module(name, source):
    import types

    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module
