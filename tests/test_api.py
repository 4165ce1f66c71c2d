"""The Python API as a notebook uses it: one keyword set, validation in the command line's words, the tolerance
factor, short reprs and the HTML table, ``lstm_compare.gradcheck``, and a notebook's own functions."""

import inspect
import subprocess
import sys
import types
from dataclasses import fields

import numpy as np
import pytest

import lstm_compare
import lstm_compare.handrolled.question_lstm
from lstm_compare import Config, ProblemSpec, UsageError
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.choices import CONVENTIONS, DEFAULT_REFERENCES, REFERENCE_NAMES
from lstm_compare.frontends.assertions import KEYWORDS, ComparisonKeywords
from lstm_compare.frontends.cli import build_parser
from lstm_compare.lstm.model import Model
from lstm_compare.lstm.problem import PROBLEM_KEYWORDS, ProblemKeywords
from lstm_compare.references import MODULES, REFERENCES
from lstm_compare.usercode.conventions import CHOICES
from helpers import edited, impl_module, report_cli, write_impl

SEED_SOURCE = inspect.getsource(lstm_compare.handrolled.question_lstm)
FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")
QUICK = {"references": ("torch",), "modes": ("isolated",)}


def test_the_problem_keywords_are_problemspecs_fields_everywhere():
    spec_fields = [f.name for f in fields(ProblemSpec) if f.name != "model"] + [f.name for f in fields(Model)]
    assert list(PROBLEM_KEYWORDS) == spec_fields
    assert list(ProblemKeywords.__annotations__) == spec_fields
    assert list(ComparisonKeywords.__annotations__) == list(KEYWORDS)
    assert list(KEYWORDS) == spec_fields + [f.name for f in fields(Config) if f.name != "spec"]
    parser = build_parser()[0]._subparsers._group_actions[0].choices["report"]  # type: ignore[union-attr]
    flags = {option for action in parser._actions for option in action.option_strings}
    assert {"--" + name.replace("_", "-") for name in spec_fields} <= flags


def test_the_literal_choices_are_the_tools_own():
    assert REFERENCE_NAMES == tuple(MODULES) and DEFAULT_REFERENCES == REFERENCES
    assert CONVENTIONS == CHOICES


@pytest.mark.parametrize("name, value, flag, text", [
    ("steps", 0, "--steps", "0"),
    ("batch", 0, "--batch", "0"),
    ("seed", -1, "--seed", "-1"),
    ("layers", 0, "--layers", "0"),
    ("dtype", "float16", "--dtype", "float16"),
])
def test_a_wrong_problem_keyword_is_the_command_lines_sentence(name, value, flag, text, capsys, tmp_path):
    with pytest.raises(UsageError) as error:
        ProblemSpec.of(**{name: value})
    api = str(error.value)
    assert api.startswith(f"{name}: ") and api.endswith(".")
    code, _, err = report_cli(capsys, flag, text, "--out", tmp_path)
    assert code == 2 and f"argument {flag}: {api[len(name) + 2:-1]} (see" in err


@pytest.mark.parametrize("keywords, message", [
    ({"steps": True}, "steps: True is not a whole number."),
    ({"zero_state": "yes"}, "zero_state: 'yes' is not True or False."),
    ({"proj": 5}, "the projection size P must be 0 (none) or between 1 and H - 1 = 4, not 5"),
])
def test_problemspec_refuses_what_no_problem_has(keywords, message):
    with pytest.raises(UsageError, match=f"^{message.replace('(', '.').replace(')', '.')}"):
        ProblemSpec.of(**keywords)


@pytest.mark.parametrize("keywords, message", [
    ({"references": ("tf",)}, "references: 'tf': choose one or more of torch, jax, numeric."),
    ({"references": "torch"}, "references: 'torch': choose one or more of torch, jax, numeric."),
    ({"modes": ("isolate",)}, "modes: unknown mode 'isolate': choose from isolated, chained, sequence."),
    ({"convention": "pytorch"}, "convention: invalid choice: 'pytorch' (choose from 'auto', 'declared', "
                                "'question', 'cs231n', 'coursera', 'karpathy')."),
    ({"timeout": 0}, "timeout: 0 is not a positive, finite number of seconds."),
    ({"tolerance_factor": 0.5}, "tolerance_factor: 0.5 is not a finite number of at least 1."),
    ({"spec": 12}, "spec: 12 is not a lstm_compare.ProblemSpec."),
])
def test_config_validates_on_construction(keywords, message):
    with pytest.raises(UsageError) as error:
        Config(**keywords)
    assert str(error.value) == message


def test_config_keeps_references_and_modes_as_tuples_once_each():
    config = Config(references=["jax", "torch", "jax"], modes=["chained"])
    assert (config.references, config.modes) == (("jax", "torch"), ("chained",))


def test_an_unknown_keyword_of_assert_lstm_matches_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword 'stepz'"):
        lstm_compare.assert_lstm_matches("my_lstm.py", stepz=3)


def test_a_tolerance_factor_widens_every_allowance_by_exactly_that_factor():
    # the cell update through a 1e8 offset: about 1e-8 of error, some ten times the float64 allowance
    lossy = impl_module("lossy", ("c = f * c_prev + i * g", "c = (f * c_prev + i * g + 1e8) - 1e8"))
    strict = lstm_compare.run(lossy, Config(**QUICK))
    widened = lstm_compare.run(lossy, Config(**QUICK, tolerance_factor=1000.0))
    assert strict.diverged and not widened.diverged
    a, b = strict.frame(), widened.frame()
    assert (a["max_abs_err"] == b["max_abs_err"]).all()
    np.testing.assert_allclose(b["tolerance"], 1000.0 * a["tolerance"], rtol=1e-15)
    assert not lstm_compare.run(lossy, Config(**QUICK, tolerance_factor=1.0)).frame()["tolerance"].ne(
        a["tolerance"]).any()  # a factor of 1 is the rule itself, bit for bit


def test_the_command_line_takes_the_tolerance_factor(tmp_path, capsys):
    path = write_impl(tmp_path, "lossy", ("c = f * c_prev + i * g", "c = (f * c_prev + i * g + 1e8) - 1e8"))
    assert report_cli(capsys, "--impl", path, "--reference", "torch", "--out", tmp_path / "a")[0] == 1
    code, out, _ = report_cli(capsys, "--impl", path, "--reference", "torch", "--out", tmp_path / "b",
                              "--tolerance-factor", "1000")
    assert code == 0 and out.startswith("lstm-compare: ") and "seed=0, allowance x1000)\n" in out
    code, _, err = report_cli(capsys, "--tolerance-factor", "0.5", "--out", tmp_path / "c")
    assert code == 2 and "argument --tolerance-factor: 0.5 is not a finite number of at least 1" in err


@pytest.fixture(scope="module")
def bug_report():
    return lstm_compare.run(FORGET_BUG.module(), Config(spec=ProblemSpec(steps=60)))


def test_a_reports_repr_is_a_short_summary_whatever_t(bug_report):
    lines = repr(bug_report).splitlines()
    assert len(lines) <= 10 and len(repr(bug_report)) < 1000
    assert lines[0].endswith("(T=60 H=5 X=3 O=1 float64 seed=0): DIVERGED")
    assert lines[1].split() == ["torch", "isolated", "DIVERGED,", "chained", "DIVERGED,", "sequence", "DIVERGED"]
    assert "  first (torch, isolated): backward step 59, gate f, dWf" in lines
    assert "  hint: the forget-gate derivative." in lines


def test_the_html_table_has_a_verdict_per_reference_and_mode_and_the_hint(bug_report):
    page = bug_report._repr_html_()
    assert page.count("<tr>") == 3 and page.count("DIVERGED") == 6
    assert "<th>isolated</th><th>chained</th><th>sequence</th>" in page
    assert "First divergence (torch, isolated): <b>backward step 59, gate f, dWf</b>" in page
    assert "Hint: the forget-gate derivative." in page


def test_a_match_in_the_users_names_shows_in_the_html(tmp_path):
    report = lstm_compare.run(lstm_compare.handrolled.question_lstm, Config(**QUICK))
    assert "match <small>(worst rel err" in report._repr_html_() and "No divergence" in report._repr_html_()
    assert repr(report).splitlines()[1].split() == ["torch", "isolated", "match"]


def test_gradcheck_from_python_returns_passed_and_a_frame():
    result = lstm_compare.gradcheck(lstm_compare.handrolled.question_lstm, steps=4, hidden=3)
    assert result.passed and bool(result)
    frame = result.frame()
    assert list(frame.columns) == ["parameter", "index", "analytic", "numeric", "relative_error", "passed"]
    assert len(frame) == result.checked == 4 * (3 + 3) * 3 + 4 * 3 + 3 * 1 + 1 and frame["passed"].all()
    assert len(repr(result).splitlines()) == 2 and ": passed" in repr(result)


def test_gradcheck_from_python_finds_the_forget_gate_bug_and_refuses_float32():
    result = lstm_compare.gradcheck(FORGET_BUG.module(), steps=4, hidden=3)
    frame = result.frame()
    failing = set(frame.loc[~frame["passed"], "parameter"])
    assert not result.passed and {"Wf", "bf"} <= failing and not {"Wy", "by"} & failing  # the head is right
    with pytest.raises(UsageError, match="gradcheck runs in float64 only"):
        lstm_compare.gradcheck(FORGET_BUG.module(), dtype="float32")
    with pytest.raises(UsageError, match="^max_entries: 0 is below the minimum of 1.$"):
        lstm_compare.gradcheck(FORGET_BUG.module(), max_entries=0)


def notebook_globals(*edits):
    """The namespace a notebook has after running a cell with the seed LSTM's code (and ``edits``) in it."""
    namespace = {"__name__": "__main__"}
    exec(compile(edited(SEED_SOURCE, *edits), "<ipython-input-1>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("wrap", [dict, lambda ns: types.SimpleNamespace(**ns)], ids=["mapping", "namespace"])
def test_a_notebooks_own_functions_are_compared_without_a_file(wrap):
    report = lstm_compare.run(wrap(notebook_globals()), Config(**QUICK))
    assert not report.diverged and report.implementation == "your namespace"
    bug = lstm_compare.run(wrap(notebook_globals((FORGET_BUG.old, FORGET_BUG.new))), Config(**QUICK))
    assert bug.findings[0].place() == "backward step 11, gate f, dWf"


def test_importing_the_package_and_the_plugin_imports_nothing_else():
    code = ("import sys, lstm_compare, lstm_compare.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'torch', 'jax', 'pandas', "
            "'lstm_compare')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['lstm_compare', 'lstm_compare.pytest_plugin']"
    assert "run" in dir(lstm_compare) and lstm_compare.run is lstm_compare.modes.pipeline.run
