"""The public bug catalog: every known bug is located exactly where it must be, by both references."""

import difflib
import inspect

import pytest

import lstm_compare.handrolled.question_lstm
from lstm_compare.catalogs.catalog import CATALOG, Bug, Location, check
from lstm_compare.modes.records import Config
from lstm_compare.modes.pipeline import run

REFERENCES = ("torch", "jax")


@pytest.mark.parametrize("bug", CATALOG, ids=[bug.name for bug in CATALOG])
def test_bug_is_located_exactly_where_it_must_be(bug):
    result = check(bug, REFERENCES)
    found = ", ".join(f"{reference}: {location}" for reference, location in result.found.items())
    assert result.ok, f"{bug.name} ({bug.description})\n  expected {result.expected}\n  found    {found}"


def test_catalog_has_at_least_fifteen_distinct_bugs():
    names = [bug.name for bug in CATALOG]
    assert len(set(names)) == len(names)
    assert len(names) >= 15


@pytest.mark.parametrize("bug", CATALOG, ids=[bug.name for bug in CATALOG])
def test_each_mutation_changes_only_a_few_lines_and_loads(bug):
    """Each bug is a small mutation of the current handrolled LSTM (``Bug.source`` itself refuses one that does
    not apply exactly once: the next test)."""
    original = inspect.getsource(lstm_compare.handrolled.question_lstm)
    changed = [line for line in difflib.ndiff(original.splitlines(), bug.source().splitlines()) if line[:1] in "+-"]
    assert 0 < len(changed) <= 2 * (1 + bug.old.count("\n") + bug.new.count("\n"))
    module = bug.module()
    assert callable(module.lstm) and callable(module.dlstm)


@pytest.mark.parametrize(("old", "count"), [("sigmoid(", 4), ("no such line", 0)])
def test_a_mutation_that_does_not_match_exactly_once_is_refused(old, count):
    bug = Bug("ambiguous", "", old, "np.tanh(", Location.at("isolated", "forward", 0, "f"))
    with pytest.raises(ValueError, match=f"occurs {count} times, not once"):
        bug.source()


def test_negative_steps_count_from_the_end_of_the_sequence():
    assert Location.at("isolated", "backward", -2, "dWo").resolve(12) == Location.at("isolated", "backward", 10, "dWo")
    assert Location.at("sequence", "backward", None, "dWy").resolve(12).step is None


@pytest.mark.parametrize("spec", sorted({bug.spec for bug in CATALOG}, key=lambda spec: spec.label()),
                         ids=lambda spec: spec.label())
def test_unmutated_lstm_is_found_nowhere(spec):
    modes = tuple(sorted({bug.expected.mode for bug in CATALOG if bug.spec == spec}))
    report = run(lstm_compare.handrolled.question_lstm, Config(spec=spec, references=REFERENCES, modes=modes))
    assert report.findings == ()
    assert report.skipped == ()
