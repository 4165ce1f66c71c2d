"""The pytest side, as a person uses it: a test file outside the project importing ``assert_lstm_matches``, and
the ``lstm_compare`` fixture with its options and baseline mode (run in-process by pytester)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import lstm_compare.handrolled.question_lstm
from lstm_compare import references
from lstm_compare import UsageError, assert_lstm_matches
from lstm_compare.frontends.assertions import compare_lstm
from lstm_compare.output.baseline import (BASELINE_COLUMNS, BaselineError, baseline_frame, read_baseline, regressions,
                              write_baseline)
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.frontends.fixture import baseline_name
from helpers import impl_module, write_impl

pytest_plugins = ["pytester"]

FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")
# The cell update computed through a large offset: about seven bits lost, so every error downstream of c grows
# about 100x, yet stays far inside the float64 tolerance (rtol 1e-9).
CELL_UPDATE = "c = f * c_prev + i * g"
LOSSY_EDIT = (CELL_UPDATE, "c = (f * c_prev + i * g + 100.0) - 100.0")

EXTERNAL_TEST = """
from lstm_compare import assert_lstm_matches

def test_my_lstm():
    assert_lstm_matches("{file}", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)
"""
GOLDEN = f"{baseline_name('test_accuracy.py::test_accuracy')}.csv"  # FIXTURE_TEST's golden CSV (and reports folder)
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
    """pytester, with a correct question's-convention file, its lossy twin and the forget-gate bug beside the tests."""
    write_impl(pytester.path, "correct_lstm")
    write_impl(pytester.path, "lossy_lstm", LOSSY_EDIT)
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
        "E *Full report: pass report_dir=... to keep divergence.csv and first_divergence.csv",
    ])
    assert "lstm_compare/modes/" not in result.stdout.str()  # the user's test, not the harness, is what is shown


def test_a_failing_assert_lstm_matches_leaves_nothing_in_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(AssertionError, match="gate f, tensor dWf"):
        assert_lstm_matches(FORGET_BUG.module(), modes=["isolated"], references=["torch"])
    assert list(tmp_path.iterdir()) == []


def test_assert_lstm_matches_names_a_missing_file_in_one_sentence(tmp_path):
    with pytest.raises(UsageError, match=r"^.*nope\.py does not exist or is not a file\.$"):
        assert_lstm_matches(tmp_path / "nope.py")


def test_assert_lstm_matches_writes_reports_to_report_dir_when_given(tmp_path):
    assert assert_lstm_matches(lstm_compare.handrolled.question_lstm, report_dir=tmp_path) is None
    first = pd.read_csv(tmp_path / "first_divergence.csv")
    assert first.empty and (tmp_path / "divergence.csv").is_file()


def test_the_lossy_cell_update_is_still_inside_tolerance():
    assert_lstm_matches(impl_module("lossy", LOSSY_EDIT))


def test_the_fixture_records_a_baseline_then_fails_a_100x_accuracy_loss_inside_tolerance(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    person.runpytest("--lstm-compare-baseline", "baselines", "--lstm-compare-update-baseline").assert_outcomes(
        passed=1)
    golden = person.path / "baselines" / GOLDEN
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
    result.stdout.fnmatch_lines([f"E *AssertionError: no lstm-compare baseline at */baselines/{GOLDEN}; "
                                 "record one with pytest --lstm-compare-update-baseline"])


def test_the_baseline_folder_can_come_from_the_ini_file(person):
    person.makeini("[pytest]\nlstm_compare_baseline = golden\n")
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    person.runpytest("--lstm-compare-update-baseline").assert_outcomes(passed=1)
    assert (person.path / "golden" / GOLDEN).is_file()


def test_the_fixture_fails_on_a_divergence_and_writes_reports_where_asked(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="forget_derivative_uses_c.py"))
    result = person.runpytest("--lstm-compare-reports", "out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E *First divergence against torch, isolated mode: backward step 11, gate f, "
                                 "tensor dWf"])
    first = pd.read_csv(person.path / "out" / GOLDEN.removesuffix(".csv") / "first_divergence.csv")
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
    golden = write_baseline(compare_lstm(lstm_compare.handrolled.question_lstm), tmp_path / "golden.csv")
    baseline = read_baseline(golden)
    assert regressions(compare_lstm(lstm_compare.handrolled.question_lstm), baseline) == []
    found = regressions(compare_lstm(impl_module("lossy", LOSSY_EDIT)), baseline)
    assert found and {r.tensor for r in found} >= {"c", "h", "y"}
    assert all(r.current > 10 * r.baseline for r in found)
    assert ("isolated", "f_pre") not in {(r.mode, r.tensor) for r in found}  # upstream of c, and fed exact states


def test_a_zero_baseline_still_allows_rounding_noise_and_a_missing_tensor_fails():
    report = compare_lstm(lstm_compare.handrolled.question_lstm)
    baseline = baseline_frame(report).astype({"max_rel_err": float})
    baseline["max_rel_err"] = 0.0
    assert regressions(report, baseline, factor=100) == []  # every error is below 100 float64 eps
    extra = baseline.iloc[:1].assign(tensor="dWz")
    [missing] = regressions(report, pd.concat([baseline, extra]), factor=100)
    assert missing.tensor == "dWz" and "no longer compared" in missing.describe()


def test_a_baseline_recorded_for_another_problem_is_refused():
    baseline = baseline_frame(compare_lstm(lstm_compare.handrolled.question_lstm, seed=1)).astype({"max_rel_err": float})
    with pytest.raises(ValueError, match="recorded for T=12 H=5 X=3 O=1 float64 seed=1, not .* seed=0"):
        regressions(compare_lstm(lstm_compare.handrolled.question_lstm), baseline)


# --- baselines keyed by node id, corrupt baselines, the factor, the plugin disabled (issue 9: 4, 18, 23, 25) ---

PARAMETRIZED_TEST = """
import pytest

@pytest.mark.parametrize("case", ["a b", "a/b", "x" * 300], ids=lambda case: case)
def test_matches(lstm_compare, case):
    lstm_compare("correct_lstm.py", steps=2, hidden=2, inputs=1, outputs=1)
"""


def test_baselines_of_ids_that_differ_in_unsafe_characters_or_module_are_distinct_and_a_300_char_id_works(person):
    person.makepyfile(test_one=PARAMETRIZED_TEST, test_two=PARAMETRIZED_TEST)
    person.runpytest("--lstm-compare-baseline", "golden", "--lstm-compare-update-baseline").assert_outcomes(
        passed=6)
    files = sorted(p.name for p in (person.path / "golden").iterdir())
    assert len(files) == 6 and max(len(name) for name in files) < 120
    person.runpytest("--lstm-compare-baseline", "golden").assert_outcomes(passed=6)


def test_baseline_names_differ_for_ids_that_sanitize_alike_and_for_each_call():
    names = {baseline_name("t.py::test[a b]"), baseline_name("t.py::test[a/b]"), baseline_name("u.py::test[a b]"),
             baseline_name("t.py::test[a b]", call=2)}
    assert len(names) == 4


@pytest.mark.parametrize("content,fault", [
    ("", "not a baseline CSV that can be read"),
    ("configuration,reference,mode,phase,tensor,max_rel_err\n", "has a header but no rows"),
    ("configuration,reference,mode,phase,max_rel_err\nT=12,torch,isolated,forward,1e-15\n",
     "missing column(s) tensor"),
    ("configuration,reference,mode,phase,tensor,max_rel_err\nT=12,torch,isolated,forward,h,nan\n",
     "line 2 has max_rel_err 'nan', not a finite number >= 0"),
    ("configuration,reference,mode,phase,tensor,max_rel_err\nT=12,torch,isolated,forward,h,1e-15\n"
     ",torch,isolated,forward,c,1e-15\n", "line 3 has an empty configuration"),
])
def test_a_corrupt_baseline_is_one_line_naming_the_file_and_the_fault(tmp_path, content, fault):
    path = tmp_path / "golden.csv"
    path.write_text(content)
    with pytest.raises(BaselineError) as raised:
        read_baseline(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and fault in message


def test_the_fixture_reports_a_header_only_baseline_in_one_line(person):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    (person.path / "baselines").mkdir()
    (person.path / "baselines" / GOLDEN).write_text(",".join(BASELINE_COLUMNS) + "\n")
    result = person.runpytest("--lstm-compare-baseline", "baselines")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E *AssertionError: */baselines/{GOLDEN}: has a header but no rows; record it "
                                 "again with --lstm-compare-update-baseline"])


@pytest.mark.parametrize("factor", ["0", "-1", "1", "nan", "inf", "ten"])
def test_a_factor_that_is_not_a_finite_number_above_1_is_a_usage_error(person, factor):
    person.makepyfile(test_accuracy=FIXTURE_TEST.format(file="correct_lstm.py"))
    result = person.runpytest("--lstm-compare-baseline", "baselines", f"--lstm-compare-factor={factor}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*must be a finite number above 1, not '{factor}'*"])


def test_disabling_the_plugin_inside_the_project_is_no_internal_error():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:lstm_compare", "-p", "no:cacheprovider",
                             "tests/test_layout.py"], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "INTERNALERROR" not in result.stdout + result.stderr
