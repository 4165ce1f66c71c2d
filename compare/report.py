"""The reporting edge: turn a ``Report`` into pandas frames and write them atomically as CSV."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from compare.engine import MODES
from compare.errors import UsageError
from compare.locate import order_key

DIVERGENCE_COLUMNS = ["reference", "mode", "phase", "step", "gate", "tensor", "shape", "max_abs_err",
                      "max_rel_err", "worst_index", "user_element", "actual", "expected", "n_mismatch", "n_total",
                      "tolerance", "noise_floor", "diverged"]
FIRST_DIVERGENCE_COLUMNS = ["reference", "mode", "phase", "step", "gate", "tensor", "max_abs_err", "max_rel_err",
                            "tolerance", "message"]
DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV = "divergence.csv", "first_divergence.csv"


def _index_text(flat, shape):
    return str(tuple(int(i) for i in np.unravel_index(int(flat), shape))) if shape else "()"


def _user_element(report, diff, flat, step):
    """The worst element in the user's own names, e.g. 'dWx[3, 11] (o block)'."""
    index = tuple(int(i) for i in np.unravel_index(int(flat), diff.shape)) if diff.shape else ()
    if report.naming is None:
        return f"{diff.tensor}{list(index)}" if index else diff.tensor
    return report.naming.element(diff.tensor, index, diff.mode, int(step))


def divergence_frame(report):
    """One row per reference x mode x phase x step x tensor, in the order the computation runs."""
    T = report.config.spec.steps
    frames = []
    for d in report.diffs:
        steps = d.steps.astype(int)
        frames.append(pd.DataFrame({
            "reference": d.reference, "mode": d.mode, "phase": d.phase,
            "step": pd.array([int(s) if s >= 0 else None for s in steps], dtype="Int64"),
            "gate": d.gate, "tensor": d.tensor, "shape": str(d.shape),
            "max_abs_err": d.max_abs_err, "max_rel_err": d.max_rel_err,
            "worst_index": [_index_text(i, d.shape) for i in d.worst_index],
            "user_element": [_user_element(report, d, i, s) for i, s in zip(d.worst_index, steps)],
            "actual": d.actual, "expected": d.expected, "n_mismatch": d.n_mismatch.astype(int),
            "n_total": d.n_total, "tolerance": d.tolerance, "noise_floor": d.noise_floor,
            "diverged": d.diverged.astype(bool),
            "_order": [order_key(d.phase, int(s), d.tensor, T) for s in steps],
        }))
    for f in report.failures:  # every exception in the user's code, also those after an earlier divergence
        frames.append(pd.DataFrame([{
            "reference": f.reference, "mode": f.mode, "phase": f.phase, "step": f.step, "gate": "",
            "tensor": "exception", "shape": "", "max_abs_err": np.nan, "max_rel_err": np.nan, "worst_index": "",
            "user_element": "",
            "actual": np.nan, "expected": np.nan, "n_mismatch": 0, "n_total": 0, "tolerance": np.nan,
            "noise_floor": np.nan, "diverged": True, "_order": order_key(f.phase, f.step, f.tensor, T)}]
        ).astype({"step": "Int64"}))  # a None step would be an all-NA object column: pandas 2 warns on concat
    if not frames:
        return pd.DataFrame(columns=DIVERGENCE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    frame["step"] = frame["step"].astype("Int64")
    frame["_reference"] = frame["reference"].map(list(report.config.references).index)
    frame["_mode"] = frame["mode"].map(MODES.index)
    frame = frame.sort_values(["_reference", "_mode", "_order"], kind="stable")
    return frame[DIVERGENCE_COLUMNS].reset_index(drop=True)


def first_divergence_frame(report):
    """One row per (reference, mode) that diverged; just the header when nothing did."""
    rows = [{column: getattr(f, column) for column in FIRST_DIVERGENCE_COLUMNS} for f in report.findings]
    frame = pd.DataFrame(rows, columns=FIRST_DIVERGENCE_COLUMNS)
    frame["step"] = frame["step"].astype("Int64")
    return frame


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv_atomically(frame, path):
    """Write ``frame`` to a temporary file beside ``path`` and move it into place in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", newline="") as handle:
            frame.to_csv(handle, index=False, lineterminator="\n")
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; a report is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def check_output_dir(out_dir):
    """Refuse, before any work, an output folder that cannot be one (UsageError, exit 2)."""
    path = Path(out_dir)
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"cannot write reports to {path}: {folder} is a file, not a folder.")


def write_reports(report, out_dir):
    """Write divergence.csv and first_divergence.csv into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    paths = (out_dir / DIVERGENCE_CSV, out_dir / FIRST_DIVERGENCE_CSV)
    frames = (divergence_frame(report), first_divergence_frame(report))
    try:
        for frame, path in zip(frames, paths):
            write_csv_atomically(frame, path)
    except OSError as error:
        raise UsageError(f"cannot write reports to {out_dir}: {error.strerror or error}.") from None
    return paths
