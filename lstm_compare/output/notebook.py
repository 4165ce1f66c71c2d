"""How a ``Report`` and a ``GradCheck`` show themselves in a notebook or at the Python prompt.

``repr`` is a short summary (a few lines, whatever T: the rows are in ``report.frame()``); a notebook shows
``_repr_html_``, a small table of verdicts, reference by mode, with the first divergence in your own names and
its hint.
"""

import html
import re
from typing import TYPE_CHECKING

from lstm_compare.lstm.where import MODES
from lstm_compare.output.summary import mode_summaries, run_label
from lstm_compare.output.text import shorten

if TYPE_CHECKING:
    import pandas as pd

    from lstm_compare.locating.locate import Finding
    from lstm_compare.modes.records import Report
    from lstm_compare.modes.gradcheck import GradCheck

HINT = re.compile(r" diverges?: (.*?)(?: worst |$)")  # what a finding's message says the cause is


def hint(finding: "Finding") -> str:
    """What the message of ``finding`` says to look at ('the forget-gate derivative.'), else the message."""
    found = HINT.search(finding.message)
    return shorten(found.group(1) if found else finding.message, 300)


def first(report: "Report") -> "Finding | None":
    """The finding a person should read first: isolated mode points at the broken line."""
    return min(report.findings, key=lambda f: f.mode != "isolated", default=None)


def report_repr(report: "Report") -> str:
    """The short summary: the verdict, one line per reference, the first divergence and its hint."""
    verdict = "DIVERGED" if report.diverged else "match"
    lines = [f"<lstm_compare.Report {report.implementation} against {', '.join(report.config.references)} "
             f"({run_label(report)}): {verdict}"]
    summaries = mode_summaries(report)
    width = max(len(name) for name in report.config.references)
    for reference in report.config.references:
        modes = [f"{s.mode} {'DIVERGED' if s.finding else 'match'}" for s in summaries if s.reference == reference]
        lines.append(f"  {reference:<{width}}  {', '.join(modes)}")
    finding = first(report)
    if finding is not None:
        lines.append(f"  first ({finding.reference}, {finding.mode}): {finding.place()}")
        lines.append(f"  hint: {hint(finding)}")
    notes = (*report.skipped, *report.notes)
    lines += [f"  note: {shorten(note, 160)}" for note in notes[:2]]
    if len(notes) > 2:
        lines.append(f"  ({len(notes) - 2} more in report.skipped and report.notes)")
    lines.append("  rows: report.frame(), report.first_divergence_frame()>")
    return "\n".join(lines)


def report_html(report: "Report") -> str:
    """A table: a row per reference, a column per mode, each cell the verdict (where it first diverged, in your
    names); then the first divergence and its hint."""
    modes = [mode for mode in MODES if mode in report.config.modes]
    cells = {(s.reference, s.mode): s for s in mode_summaries(report)}
    head = "".join(f"<th>{mode}</th>" for mode in modes)
    rows = []
    for reference in report.config.references:
        row = []
        for mode in modes:
            s = cells.get((reference, mode))
            if s is None:
                row.append("<td>not run</td>")
            elif s.finding is not None:
                row.append(f"<td style='color:#b00'><b>DIVERGED</b> {html.escape(s.finding.place())}</td>")
            else:
                row.append(f"<td style='color:#070'>match <small>(worst rel err {s.worst_rel_err:.1e})</small></td>")
        rows.append(f"<tr><th>{html.escape(reference)}</th>{''.join(row)}</tr>")
    title = (f"<b>{html.escape(report.implementation)}</b> against {html.escape(', '.join(report.config.references))}"
             f" ({html.escape(run_label(report))})")
    parts = [f"<p>{title}</p>", f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"]
    finding = first(report)
    if finding is not None:
        parts.append(f"<p>First divergence ({html.escape(finding.reference)}, {finding.mode}): "
                     f"<b>{html.escape(finding.place())}</b><br>Hint: {html.escape(hint(finding))}</p>")
    else:
        parts.append("<p>No divergence: every compared tensor is within tolerance.</p>")
    parts += [f"<p><small>{html.escape(shorten(note, 300))}</small></p>" for note in (*report.skipped, *report.notes)]
    return "\n".join(parts)


def gradcheck_repr(result: "GradCheck", verdict_line: str) -> str:
    """The gradient check's verdict in two lines: its own, then ``verdict_line`` (the summary's last line;
    ``result.frame()`` has every checked entry)."""
    verdict = "passed" if result.passed else "FAILED"
    return f"<lstm_compare.GradCheck {result.implementation} ({result.spec.label()}): {verdict}\n  {verdict_line}>"


def gradcheck_frame(result: "GradCheck") -> "pd.DataFrame":
    """One row per checked parameter entry, worst first within each parameter: parameter, index, analytic,
    numeric, relative_error, passed."""
    import pandas as pd

    return pd.DataFrame([{"parameter": e.parameter, "index": e.index, "analytic": e.analytic, "numeric": e.numeric,
                          "relative_error": e.relative_error, "passed": e.passed}
                         for p in result.parameters for e in p.entries],
                        columns=["parameter", "index", "analytic", "numeric", "relative_error", "passed"])
