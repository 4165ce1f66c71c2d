"""``assert_lstm_matches``: the whole comparison as one assertion, for a person's own pytest suite.

    from lstm_compare import assert_lstm_matches

    def test_my_lstm():
        assert_lstm_matches("my_lstm.py", steps=12, hidden=5, inputs=3, outputs=1, dtype="float64", seed=0)

It returns quietly when every reference and mode matches, and raises ``AssertionError`` otherwise, with the
first divergence spelled out (mode, phase, step, gate, tensor, worst index, both values, tolerance) and the path
to the full report.  A file that cannot be compared at all raises ``lstm_compare.UsageError`` with one sentence.
"""

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from lstm_compare.lstm.where import MODES

from lstm_compare.modes.records import Config

from lstm_compare.modes.pipeline import run
from lstm_compare.errors import UsageError
from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.output.text import shorten
from lstm_compare.references import REFERENCES
from lstm_compare.lstm.model import Model

if TYPE_CHECKING:
    from lstm_compare.usercode.conventions.base import Source
    from lstm_compare.modes.records import Report
    from lstm_compare.locating.locate import Finding
    from lstm_compare.measuring.measure import TensorDiff


def compare_lstm(impl: "Source", *, steps: int = 12, hidden: int = 5, inputs: int = 3, outputs: int = 1,
                 dtype: str = "float64", seed: int = 0, batch: int | None = None, zero_state: bool = False,
                 references: Sequence[str] = REFERENCES, modes: Sequence[str] = MODES,
                 convention: str = "auto", layers: int = 1, bidirectional: bool = False, proj: int = 0,
                 peepholes: bool = False) -> "Report":
    """Run the comparison on ``impl`` (a path or a module) for one problem: a ``lstm_compare.Report``.

    ``layers``, ``bidirectional``, ``proj`` and ``peepholes`` describe a model variant
    (``lstm_compare.lstm.model.Model``).

    A ``UsageError`` (the file does not import, a wrong interface) is raised afresh, without the internal
    traceback, so that a test shows the one sentence that matters.
    """
    __tracebackhide__ = True
    spec = ProblemSpec(steps=steps, hidden=hidden, inputs=inputs, outputs=outputs, batch=batch, dtype=dtype,
                       seed=seed, zero_state=zero_state, model=Model(layers, bidirectional, proj, peepholes))
    try:
        return run(impl, Config(spec=spec, references=tuple(references), modes=tuple(modes), convention=convention))
    except UsageError as error:
        raise UsageError(str(error)) from None


def assert_lstm_matches(impl: "Source", steps: int = 12, hidden: int = 5, inputs: int = 3, outputs: int = 1,
                        dtype: str = "float64", seed: int = 0, *, batch: int | None = None, zero_state: bool = False,
                        references: Sequence[str] = REFERENCES, modes: Sequence[str] = MODES,
                        convention: str = "auto", report_dir: str | os.PathLike[str] | None = None,
                        layers: int = 1, bidirectional: bool = False, proj: int = 0, peepholes: bool = False) -> None:
    """Raise ``AssertionError`` unless ``impl`` matches every reference in every mode; otherwise return None.

    The problem (parameters, inputs, targets, initial state) is drawn from ``seed`` exactly as
    ``lstm-compare report`` draws it.  Reports are written to ``report_dir`` when it is given, and on a failure
    to a fresh temporary folder otherwise (the message names it).
    """
    __tracebackhide__ = True
    report = compare_lstm(impl, steps=steps, hidden=hidden, inputs=inputs, outputs=outputs, dtype=dtype, seed=seed,
                          batch=batch, zero_state=zero_state, references=references, modes=modes,
                          convention=convention, layers=layers, bidirectional=bidirectional, proj=proj,
                          peepholes=peepholes)
    if report_dir is not None or report.diverged:
        from lstm_compare.output.report import write_reports  # pandas, only when a report is written

        out = Path(report_dir) if report_dir is not None else Path(tempfile.mkdtemp(prefix="lstm-compare-"))
        paths = write_reports(report, out)
    if report.diverged:
        raise AssertionError(mismatch_message(report, paths[0]))


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
    return "\n".join(lines)



def _diff_at(report: "Report", finding: "Finding") -> tuple["TensorDiff", int]:
    """The ``TensorDiff`` behind a finding and the position of its step within it."""
    step = -1 if finding.step is None else finding.step
    for diff in report.diffs:
        if diff.where == finding.where:
            return diff, int(np.flatnonzero(diff.steps == step)[0])
    raise LookupError(f"no measurement behind the finding {finding}")
