"""A short plain-text summary of a ``Report`` that a person can act on."""

from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Iterable

import numpy as np

from lstm_compare.lstm.where import Mode, rank
from lstm_compare.output.text import shorten

if TYPE_CHECKING:
    from lstm_compare.modes.records import Report
    from lstm_compare.locating.locate import Finding


@dataclass(frozen=True)
class ModeSummary:
    """One reference x mode: its worst norm-wise relative error and its first divergence, if any."""

    reference: str
    mode: Mode
    worst_rel_err: float
    worst_ratio: float  # the largest max_abs_err / tolerance: below 1 means everything matched
    finding: "Finding | None"


def mode_summaries(report: "Report") -> list[ModeSummary]:
    """One ``ModeSummary`` per reference and mode that produced anything, in reference then mode order."""
    findings = {(f.reference, f.mode): f for f in report.findings}
    worst: dict[tuple[str, Mode], tuple[float, float]] = {}
    for d in report.diffs:
        key = (d.reference, d.mode)
        rel, ratio = worst.get(key, (0.0, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            step_ratio = np.where(d.tolerance > 0, d.max_abs_err / d.tolerance, np.inf)
        worst[key] = (max(rel, float(np.max(d.max_rel_err))), max(ratio, float(np.max(step_ratio))))
    keys = set(worst) | set(findings)
    return [ModeSummary(r, m, *worst.get((r, m), (np.nan, np.nan)), findings.get((r, m)))
            for r, m in sorted(keys, key=lambda key: rank(report.config.references, *key))]


def run_label(report: "Report") -> str:
    """The problem's label, and the allowance's factor where one widens it: 'T=12 ... seed=0, allowance x1000'."""
    factor = report.config.tolerance_factor
    return report.config.spec.label() + ("" if factor == 1 else f", allowance x{factor:g}")


def summarize(report: "Report", paths: Iterable[str | PathLike[str]] = ()) -> str:
    """Lines for the terminal: one per reference x mode, then each first divergence, then where reports went."""
    lines = [f"lstm-compare: {report.implementation} against {', '.join(report.config.references)} "
             f"({run_label(report)})"]
    width = max(6, *(len(name) + 1 for name in report.config.references))
    for s in mode_summaries(report):
        status = "DIVERGED" if s.finding else "match"
        where = f"  first: {s.finding.place()}" if s.finding else ""
        lines.append(f"  {s.reference:<{width}} {s.mode:<9} {status:<8} worst rel err {s.worst_rel_err:.1e}{where}")
    lines += [f"  {note}" for note in (*report.notes, *report.skipped)]
    for f in report.findings:
        lines.append(f"{f.reference}, {f.mode}: {shorten(f.message)}")
    for f in report.failures:
        if f not in report.findings:  # raised after an earlier divergence: still worth knowing
            lines.append(f"{f.reference}, {f.mode}, later: {shorten(f.message)}")
    if not report.findings:
        lines.append(f"No divergence: every compared tensor is within tolerance of {_references(report)}.")
    if paths:
        lines.append("Reports: " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


def _references(report: "Report") -> str:
    names = report.config.references
    return {1: f"the {names[0]} reference", 2: "both references"}.get(len(names), f"all {len(names)} references")
