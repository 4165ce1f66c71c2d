"""``assert_lstm_matches``: the whole comparison as one assertion, for a person's own pytest suite.

    from lstm_compare import assert_lstm_matches

    def test_my_lstm():
        assert_lstm_matches("my_lstm.py", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)

It returns quietly when every reference and mode matches, and raises ``AssertionError`` otherwise, with the
first divergence spelled out (mode, phase, step, gate, tensor, worst index, both values, tolerance) and the path
to the full report.  A file that cannot be compared at all raises ``lstm_compare.UsageError`` with one sentence.
"""

import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lstm_compare.choices import Convention, Mode, Reference
from lstm_compare.errors import UsageError
from lstm_compare.lstm.problem import PROBLEM_KEYWORDS, ProblemKeywords, ProblemSpec
from lstm_compare.modes.pipeline import run
from lstm_compare.modes.records import Config
from lstm_compare.output.text import shorten

if TYPE_CHECKING:
    from typing import Unpack

    from lstm_compare.usercode.conventions.base import Source
    from lstm_compare.modes.records import Report
    from lstm_compare.locating.locate import Finding
    from lstm_compare.measuring.measure import TensorDiff


class ComparisonKeywords(ProblemKeywords, total=False):
    """The keywords of ``compare_lstm``, ``assert_lstm_matches`` and the fixture: the problem's
    (``ProblemSpec``'s fields and its model's), then ``Config``'s own (a test checks they are ``KEYWORDS``)."""

    references: Sequence[Reference]
    modes: Sequence[Mode]
    convention: Convention
    timeout: float | None
    tolerance_factor: float


CONFIG_KEYWORDS = tuple(f.name for f in fields(Config) if f.name != "spec")
KEYWORDS = PROBLEM_KEYWORDS + CONFIG_KEYWORDS


def config_of(keywords: "dict[str, Any]") -> Config:
    """The ``Config`` of the comparison keywords; an unknown keyword is a ``TypeError``, a wrong value a
    ``UsageError`` (one sentence)."""
    unknown = [name for name in keywords if name not in KEYWORDS]
    if unknown:
        raise TypeError(f"unexpected keyword {unknown[0]!r}: choose from {', '.join(KEYWORDS)}")
    spec = ProblemSpec.of(**{name: value for name, value in keywords.items() if name in PROBLEM_KEYWORDS})
    return Config(spec=spec, **{name: value for name, value in keywords.items() if name in CONFIG_KEYWORDS})


def compare_lstm(impl: "Source", **keywords: "Unpack[ComparisonKeywords]") -> "Report":
    """Run the comparison on ``impl`` (a path or a module) for one problem: a ``lstm_compare.Report``.

    The keywords (all optional): the problem's, ``steps=12, hidden=5, inputs=3, outputs=1, batch=None,
    dtype="float64", seed=0, zero_state=False`` and a model variant's ``layers=1, bidirectional=False, proj=0,
    peepholes=False``; then ``references``, ``modes``, ``convention``, ``timeout`` and ``tolerance_factor``, as in
    ``Config``.  A ``UsageError`` (a wrong value, a file that does not import, a wrong interface) is raised
    afresh, without the internal traceback, so that a test shows the one sentence that matters.
    """
    __tracebackhide__ = True
    try:
        return run(impl, config_of(dict(keywords)))
    except UsageError as error:
        raise UsageError(str(error)) from None


def assert_lstm_matches(impl: "Source", *, report_dir: str | os.PathLike[str] | None = None,
                        **keywords: "Unpack[ComparisonKeywords]") -> None:
    """Raise ``AssertionError`` unless ``impl`` matches every reference in every mode; otherwise return None.

    The keywords are ``compare_lstm``'s.  The problem (parameters, inputs, targets, initial state) is drawn from
    ``seed`` exactly as ``lstm-compare report`` draws it.  Reports are written to ``report_dir`` when it is
    given; without it nothing is left behind: the message of a failure holds what the reports would say first.
    """
    __tracebackhide__ = True
    report = compare_lstm(impl, **keywords)
    if report_dir is not None:
        from lstm_compare.output.report import write_reports  # pandas, only when a report is written

        paths = write_reports(report, Path(report_dir))
        if report.diverged:
            raise AssertionError(mismatch_message(report, paths[0]))
    elif report.diverged:
        raise AssertionError(mismatch_message(report))


def mismatch_message(report: "Report", report_path: str | os.PathLike[str] | None = None) -> str:
    """A message in the spirit of ``torch.testing.assert_close`` for a report that diverged."""
    findings = sorted(report.findings, key=lambda f: f.mode != "isolated")  # isolated points at the line
    first = findings[0]
    lines = [f"{report.implementation} does not match the references ({report.config.spec.label()})!",
             f"First divergence against {first.reference}, {first.mode} mode: {first.place(name_tensor=True)}"]
    if first.tensor == "exception":
        lines.append(shorten(first.message))
    else:
        diff, k = _diff_at(report, first)
        index = ", ".join(str(i) for i in first.worst_index)  # type: ignore[union-attr]  # None for exceptions only
        lines += [
            f"Mismatched elements: {int(diff.n_mismatch[k])} / {diff.n_total} "
            f"({100 * diff.n_mismatch[k] / max(diff.n_total, 1):.1f}%)",
            f"Greatest absolute difference: {first.max_abs_err:.2e} at index ({index}) "
            f"(up to {first.tolerance:.2e} allowed)",
            f"Greatest relative difference: {first.max_rel_err:.2e} (norm-wise: |error| / max |expected|)",
            f"Actual {first.tensor}[{index}] = {first.actual!r}, expected {first.expected!r}"
            + (f" (yours: {first.user_tensor})" if first.user_tensor else ""),
            shorten(first.message),
        ]
    others = [f"{f.reference} {f.mode} ({f.place(name_tensor=True)})" for f in findings[1:]]
    if others:
        lines.append(f"Also diverged: {'; '.join(others)}")
    if report_path is not None:
        lines.append(f"Full report: {report_path} (first_divergence.csv beside it)")
    else:
        lines.append("Full report: pass report_dir=... to keep divergence.csv and first_divergence.csv")
    return "\n".join(lines)



def _diff_at(report: "Report", finding: "Finding") -> tuple["TensorDiff", int]:
    """The ``TensorDiff`` behind a finding and the position of its step within it."""
    step = -1 if finding.step is None else finding.step
    for diff in report.diffs:
        if diff.where == finding.where:
            return diff, int(np.flatnonzero(diff.steps == step)[0])
    raise LookupError(f"no measurement behind the finding {finding}")
