"""Accuracy baselines: a report's worst error per tensor saved as a golden CSV, and a check against it.

Matching within tolerance is not the whole story: a refactor that makes every gradient 100x less accurate can
still sit far inside a float64 tolerance.  The baseline records, per reference x mode x phase x tensor, the worst
norm-wise relative error over the steps; a later run fails when any of them grows past

    allowed = factor * max(baseline, eps(dtype))

(``eps`` so that an error recorded as exactly zero still allows rounding-level noise).
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstm_compare.lstm.cell import rank
from lstm_compare.lstm.where import Placed, Where
from lstm_compare.lstm.where import rank as result_rank
from lstm_compare.output.atomic import write_csv_atomically
from lstm_compare.references import REFERENCES

if TYPE_CHECKING:
    from lstm_compare.modes.records import Report

BASELINE_COLUMNS = ["configuration", "reference", "mode", "phase", "tensor", "max_rel_err"]
DEFAULT_FACTOR = 10.0


@dataclass(frozen=True)
class Regression(Placed):
    """One tensor whose error grew past what its baseline allows."""

    where: Where
    baseline: float  # NaN: the tensor is not in the current report at all
    current: float
    allowed: float

    def describe(self) -> str:
        name = f"{self.reference} {self.mode} {self.phase} {baseline_tensor(self.where)}"
        if np.isnan(self.current):
            return f"{name}: in the baseline but no longer compared"
        growth = f"{self.current / self.baseline:.3g}x" if self.baseline > 0 else "it was exact"
        return (f"{name}: max rel err {self.current:.2e}, baseline {self.baseline:.2e} ({growth}; up to "
                f"{self.allowed:.2e} allowed)")


def baseline_tensor(where: Where) -> str:
    """A compared tensor's name in a baseline: its own, with its layer and direction when a model variant has
    more than one (``dWf (layer 2, reverse)``), so that every layer's error is kept apart."""
    if where.layer == 0 or (where.layer, where.direction) == (1, "forward"):
        return where.tensor
    return f"{where.tensor} (layer {where.layer}, {where.direction})"


SLOT_SUFFIX = re.compile(r"(?P<tensor>.+) \(layer (?P<layer>\d+), (?P<direction>forward|reverse)\)")


def _where(reference: str, mode: str, phase: str, tensor: str) -> Where:
    """The ``Where`` of a baseline row (``baseline_tensor`` read back)."""
    slot = SLOT_SUFFIX.fullmatch(tensor)
    if slot is None:
        return Where(reference, mode, phase, tensor)  # type: ignore[arg-type]  # the file's words, as written
    return Where(reference, mode, phase, slot["tensor"], int(slot["layer"]),  # type: ignore[arg-type]
                 slot["direction"])  # type: ignore[arg-type]


def baseline_frame(report: "Report") -> pd.DataFrame:
    """The worst relative error over the steps of every compared tensor, three significant digits."""
    rows = [{"configuration": report.config.spec.label(), "reference": d.reference, "mode": d.mode,
             "phase": d.phase, "tensor": baseline_tensor(d.where), "max_rel_err": f"{float(np.max(d.max_rel_err)):.2e}"}
            for d in report.diffs]
    return pd.DataFrame(rows, columns=BASELINE_COLUMNS)


def write_baseline(report: "Report", path: str | os.PathLike[str]) -> Path:
    write_csv_atomically(baseline_frame(report), path)
    return Path(path)


class BaselineError(ValueError):
    """A golden CSV that cannot serve as a baseline; the message names the file and what is wrong, in one line."""


def read_baseline(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The golden CSV at ``path`` as a frame, or ``BaselineError``: unreadable, a column missing, no rows, an
    empty configuration, or an error that is not a finite number >= 0."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise BaselineError(f"{path}: not a baseline CSV that can be read ({message})") from None
    missing = [column for column in BASELINE_COLUMNS if column not in frame.columns]
    if missing:
        raise BaselineError(f"{path}: missing column(s) {', '.join(missing)} (a baseline has "
                            f"{', '.join(BASELINE_COLUMNS)})")
    if frame.empty:
        raise BaselineError(f"{path}: has a header but no rows")
    errors = pd.to_numeric(frame["max_rel_err"], errors="coerce")
    bad = ~(np.isfinite(errors) & (errors >= 0)) | (frame["configuration"] == "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        what = ("an empty configuration" if frame["configuration"].iloc[row] == ""
                else f"max_rel_err {frame['max_rel_err'].iloc[row]!r}, not a finite number >= 0")
        raise BaselineError(f"{path}: line {row + 2} has {what}")
    return frame.assign(max_rel_err=errors.astype(float))


def regressions(report: "Report", baseline: pd.DataFrame, factor: float = DEFAULT_FACTOR) -> list[Regression]:
    """Every tensor of ``baseline`` (a frame from ``read_baseline``) whose error in ``report`` grew past
    ``factor`` times its baseline, listed in the order the computation runs (so the first is where it starts).

    Raises ``ValueError`` when the baseline was recorded for a different problem (sizes, dtype, seed), where
    its errors say nothing about this one.
    """
    label = report.config.spec.label()
    recorded = set(baseline["configuration"])
    if recorded != {label}:
        raise ValueError(f"the baseline was recorded for {', '.join(sorted(recorded))}, not {label}")
    eps = float(np.finfo(np.dtype(report.config.spec.dtype)).eps)
    current = {d.where: float(np.max(d.max_rel_err)) for d in report.diffs}
    found: list[Regression] = []
    row: Any  # a row of read_baseline's frame: str columns, max_rel_err a float
    for row in baseline.itertuples(index=False):
        where = _where(row.reference, row.mode, row.phase, row.tensor)
        allowed = factor * max(row.max_rel_err, eps)
        now = current.get(where, np.nan)
        if not now <= allowed:  # also NaN: missing now, or NaN in the implementation
            found.append(Regression(where, row.max_rel_err, now, allowed))
    return sorted(found, key=_computation_order)


def _computation_order(r: Regression) -> tuple[bool, int, bool, int, int]:
    """Missing tensors first, then isolated mode (where a loss of accuracy starts), in the order the LSTM runs."""
    reference, mode = result_rank(REFERENCES, r.reference, r.mode)
    try:
        position = rank(r.phase, r.tensor)
    except ValueError:  # a tensor this version no longer compares (only in an old baseline)
        position = -1
    return (not np.isnan(r.current), mode, r.phase != "forward", position, reference)


def regression_message(found: list[Regression], path: str | os.PathLike[str], factor: float, limit: int = 10) -> str:
    """'accuracy regressed against tests/baselines/x.csv (more than 10x): ...' for a failing check."""
    lines = [f"LSTM accuracy regressed against the baseline {path}: {len(found)} tensor(s) grew more than "
             f"{factor:g}x, though still within tolerance."]
    lines += [f"  {r.describe()}" for r in found[:limit]]
    if len(found) > limit:
        lines.append(f"  ... and {len(found) - limit} more")
    lines.append("If the change is intended, record a new baseline with --lstm-compare-update-baseline.")
    return "\n".join(lines)
