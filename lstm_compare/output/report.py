"""The reporting edge: turn a ``Report`` into pandas frames, and write one run's files together or not at all.

Every file is first written to a hidden temporary beside its target (``.<name>.<pid>.<random>.tmp``), and only
when all of them are complete are they moved into place, one ``os.replace`` each.  Every target is checked
before anything is written.  A temporary never outlives its write: an exception, Ctrl-C (KeyboardInterrupt) or
SIGTERM removes it (SIGTERM is then delivered again, so the process still ends as it would have); one left by
a process killed outright (SIGKILL) is removed by the next write into the same folder.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from lstm_compare.lstm.where import by_reference_and_mode
from lstm_compare.locating.locate import Finding, order_key, order_keys
from lstm_compare.output.atomic import Output, commit

if TYPE_CHECKING:

    import pandas as pd

    from lstm_compare.modes.records import Report
    from lstm_compare.measuring.measure import TensorDiff

DIVERGENCE_COLUMNS = ["reference", "mode", "layer", "direction", "phase", "step", "gate", "tensor", "shape",
                      "max_abs_err", "max_rel_err", "worst_index", "user_element", "actual", "expected", "n_mismatch",
                      "n_total", "tolerance", "noise_floor", "diverged"]
FIRST_DIVERGENCE_COLUMNS = ["reference", "mode", "layer", "direction", "phase", "step", "gate", "tensor",
                            "max_abs_err", "max_rel_err", "tolerance", "message"]
DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV = "divergence.csv", "first_divergence.csv"


def _index_texts(flat: np.ndarray, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each flat index in ``flat`` as a tuple of Python ints within ``shape`` (() for a scalar)."""
    if not shape:
        return [()] * len(flat)
    return list(zip(*(c.tolist() for c in np.unravel_index(flat.astype(np.intp), shape))))


def _user_elements(report: "Report", diff: "TensorDiff", indices: list[tuple[int, ...]], steps: np.ndarray
                   ) -> list[str]:
    """The worst element of each row in the user's own names, e.g. 'dWx[3, 11] (o block)'."""
    if report.naming is None:
        return [f"{diff.tensor}{list(index)}" if index else diff.tensor for index in indices]
    element = report.naming.element
    if diff.mode == "sequence":  # a per-step tensor's name there holds its step
        return [element(diff.tensor, index, diff.mode, step) for index, step in zip(indices, steps.tolist())]
    names: dict[tuple[int, ...], str] = {}  # the same element at many steps: named once
    return [names.get(index) or names.setdefault(index, element(diff.tensor, index, diff.mode, -1))
            for index in indices]


def _worst_columns(report: "Report", d: "TensorDiff", steps: np.ndarray, quote: bool) -> tuple[np.ndarray, np.ndarray]:
    """The worst_index and user_element columns of one diff (object arrays over its steps), each distinct element
    named once; with ``quote``, as CSV fields."""
    field: Callable[[str], str] = _csv_field if quote else str
    if report.naming is not None and d.mode == "sequence":  # a per-step tensor's name there holds its step
        indices = _index_texts(d.worst_index, d.shape)
        texts = [field(str(index) if index else "()") for index in indices]
        return (np.array(texts, dtype=object),
                np.array(list(map(field, _user_elements(report, d, indices, steps))), dtype=object))
    unique, inverse = np.unique(d.worst_index, return_inverse=True)
    indices = _index_texts(unique, d.shape)
    worst = np.array([field(str(index) if index else "()") for index in indices], dtype=object)
    users = np.array(list(map(field, _user_elements(report, d, indices, steps))), dtype=object)
    return worst[inverse.reshape(-1)], users[inverse.reshape(-1)]


def _diff_columns(report: "Report", d: "TensorDiff", quote: bool = False) -> dict[str, Any]:
    """The divergence.csv columns of one ``TensorDiff``: arrays over its steps, or one value for every row (with
    ``quote``, worst_index and user_element as CSV fields)."""
    steps = d.steps.astype(int)
    worst, users = _worst_columns(report, d, steps, quote)
    return {"reference": d.reference, "mode": d.mode, "layer": d.layer, "direction": d.direction, "phase": d.phase,
            "step": np.where(steps >= 0, steps, -1), "gate": d.gate, "tensor": d.tensor, "shape": str(d.shape),
            "max_abs_err": d.max_abs_err, "max_rel_err": d.max_rel_err, "worst_index": worst, "user_element": users,
            "actual": d.actual, "expected": d.expected, "n_mismatch": d.n_mismatch.astype(int),
            "n_total": d.n_total, "tolerance": d.tolerance, "noise_floor": d.noise_floor,
            "diverged": d.diverged.astype(bool)}


QUOTED = ("worst_index", "user_element")  # the columns _diff_columns gives as CSV fields when asked to quote


def _failure_columns(f: "Finding") -> dict[str, Any]:
    """The divergence.csv row of an exception in the user's code."""
    return {"reference": f.reference, "mode": f.mode, "layer": f.layer, "direction": f.direction, "phase": f.phase,
            "step": -1 if f.step is None else f.step,
            "gate": "", "tensor": "exception", "shape": "", "max_abs_err": np.nan, "max_rel_err": np.nan,
            "worst_index": "", "user_element": "", "actual": np.nan, "expected": np.nan, "n_mismatch": 0,
            "n_total": 0, "tolerance": np.nan, "noise_floor": np.nan, "diverged": True}


@dataclass(frozen=True)
class _Block:
    """Rows of divergence.csv from one diff or one failure: their columns and their keys in computation order."""

    columns: dict[str, Any]
    order: np.ndarray  # (rows, KEY_FIELDS): locate.order_key of each row

    def __len__(self) -> int:
        return len(self.order)


def _row_groups(report: "Report", quote: bool = False) -> Iterator[list[_Block]]:
    """The blocks of each (reference, mode), in the report's order of references and modes; each group's columns
    are built only when it is reached (``quote``: as ``_diff_columns``)."""
    T = report.config.spec.steps
    groups: dict[tuple[int, int], list["TensorDiff | Finding"]] = {}
    group_of = by_reference_and_mode(report.config.references)
    # every exception in the user's code, also those after an earlier divergence, after the diffs of its group
    items: list["TensorDiff | Finding"] = [*report.diffs, *report.failures]
    for item in items:
        groups.setdefault(group_of(item), []).append(item)
    for key in sorted(groups):
        blocks = []
        for item in groups[key]:
            if isinstance(item, Finding):
                order = np.array([order_key(item.phase, item.step, item.tensor, T, item.layer, item.direction)],
                                 dtype=np.int64)
                blocks.append(_Block(_failure_columns(item), order))
            else:
                blocks.append(_Block(_diff_columns(report, item, quote),
                                     order_keys(item.phase, item.steps, item.tensor, T, item.layer, item.direction)))
        yield blocks


def _column(blocks: list[_Block], name: str) -> np.ndarray:
    """One column over ``blocks``' rows (a value given once stands for every row of its block)."""
    parts = []
    for block in blocks:
        value = block.columns[name]
        if isinstance(value, np.ndarray):
            parts.append(value)
        elif isinstance(value, list):
            parts.append(np.array(value, dtype=object))
        else:
            parts.append(np.full(len(block), value, dtype=object if isinstance(value, str) else None))
    column = np.concatenate(parts)
    return column.astype(object) if any(p.dtype == object for p in parts) else column


def divergence_frame(report: "Report") -> "pd.DataFrame":
    """One row per reference x mode x phase x step x tensor, in the order the computation runs."""
    import pandas as pd  # only where a frame is asked for: the command line writes its CSVs without pandas

    frames = []
    for blocks in _row_groups(report):
        columns, order = _sorted_columns(blocks)
        frame = pd.DataFrame({name: column[order] for name, column in columns.items()})
        steps = frame["step"].to_numpy()
        frame["step"] = pd.array([int(s) if s >= 0 else None for s in steps], dtype="Int64")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=DIVERGENCE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True)
    for name in ("max_abs_err", "max_rel_err", "actual", "expected", "tolerance", "noise_floor"):
        frame[name] = frame[name].astype(np.float64)
    frame = frame.astype({"n_mismatch": np.int64, "n_total": np.int64, "diverged": bool})
    return frame[DIVERGENCE_COLUMNS].reset_index(drop=True)


def _sorted_columns(blocks: list[_Block]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every column of ``blocks`` concatenated, and the stable order of their rows in computation order."""
    return {name: _column(blocks, name) for name in DIVERGENCE_COLUMNS}, _row_order(blocks)


def _row_order(blocks: list[_Block]) -> np.ndarray:
    """The stable order of ``blocks``' rows in computation order (``locate.order_key``; ties keep the diffs' order)."""
    keys = np.concatenate([block.order for block in blocks]).reshape(-1, KEY_FIELDS)
    return np.lexsort(keys.T[::-1])  # the first field is the primary key


KEY_FIELDS = 4  # the length of a locate.order_key
CHUNK_ROWS = 4096  # rows formatted and written at a time: the writer's memory does not grow with T


def _csv_field(text: str) -> str:
    """One field as the csv module writes it (QUOTE_MINIMAL: quoted when it holds a comma, a quote or a line end;
    pandas' to_csv writes through that module)."""
    if "," in text or '"' in text or "\n" in text or "\r" in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_texts(column: np.ndarray, name: str) -> list[str]:
    """``column``'s values as pandas' ``to_csv`` writes them (floats as NumPy's shortest repr, NaN as '')."""
    if name == "step":  # -1: a whole-sequence value (pandas' missing Int64)
        return ["" if s < 0 else str(s) for s in column.tolist()]
    if column.dtype.kind == "f":
        if not len(column):
            return []
        # Python's repr is NumPy's shortest repr (and faster than astype(str)); a list's repr makes each item's
        # repr in one C loop, a third faster than map(repr, ...), and no float's repr holds ", "
        texts = str(column.tolist())[1:-1].split(", ")
        for k in np.flatnonzero(np.isnan(column)).tolist():
            texts[k] = ""
        return texts
    if column.dtype.kind == "b":
        return ["True" if v else "False" for v in column.tolist()]
    if column.dtype.kind in "iu":
        return list(map(str, column.tolist()))
    return [_csv_field(str(v)) for v in column.tolist()]


def _csv_columns(blocks: list[_Block]) -> list[tuple[np.ndarray, str | None]]:
    """The fields of ``blocks``' rows, in DIVERGENCE_COLUMNS order: (the CSV texts of each block, None) for a
    column with one value for all the rows of every block, (the values of every row, the column's name)
    otherwise.  Adjacent columns of the first kind come joined into one field (fewer fields to join per row)."""
    columns: list[tuple[np.ndarray, str | None]] = []
    for name in DIVERGENCE_COLUMNS:
        values = [block.columns[name] for block in blocks]
        if any(isinstance(v, (np.ndarray, list)) for v in values):
            columns.append((_column(blocks, name), name))
            continue
        texts = np.empty(len(values), dtype=object)
        texts[:] = [_csv_texts(np.array([v], dtype=object if isinstance(v, str) else None), name)[0] for v in values]
        if columns and columns[-1][1] is None:
            joined = np.empty(len(values), dtype=object)
            joined[:] = [f"{before},{text}" for before, text in zip(columns[-1][0].tolist(), texts.tolist())]
            columns[-1] = (joined, None)
        else:
            columns.append((texts, None))
    return columns


def write_divergence_csv(report: "Report", path: str | os.PathLike[str]) -> None:
    """divergence.csv, byte for byte what ``divergence_frame(report).to_csv(path, index=False)`` writes, streamed
    in chunks of ``CHUNK_ROWS`` rows of one (reference, mode) at a time."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        file.write(",".join(map(_csv_field, DIVERGENCE_COLUMNS)) + "\n")
        for blocks in _row_groups(report, quote=True):
            order = _row_order(blocks)
            block_of_row = np.repeat(np.arange(len(blocks)), [len(block) for block in blocks])
            columns = _csv_columns(blocks)
            for start in range(0, len(order), CHUNK_ROWS):
                rows = order[start:start + CHUNK_ROWS]
                in_block = block_of_row[rows]
                texts = [values[in_block].tolist() if name is None
                         else values[rows].tolist() if name in QUOTED else _csv_texts(values[rows], name)
                         for values, name in columns]
                file.write("\n".join(map(",".join, zip(*texts))) + "\n")


def first_divergence_frame(report: "Report") -> "pd.DataFrame":
    """One row per (reference, mode) that diverged; just the header when nothing did."""
    import pandas as pd

    rows = [{column: getattr(f, column) for column in FIRST_DIVERGENCE_COLUMNS} for f in report.findings]
    frame = pd.DataFrame(rows, columns=FIRST_DIVERGENCE_COLUMNS)
    frame["step"] = frame["step"].astype("Int64")
    return frame


def write_first_divergence_csv(report: "Report", path: str | os.PathLike[str]) -> None:
    """first_divergence.csv, byte for byte what ``first_divergence_frame(report).to_csv(path, index=False)`` writes
    (without importing pandas)."""
    def text(column: str, value: Any) -> str:
        if column == "step":
            return "" if value is None else str(int(value))
        if column in ("max_abs_err", "max_rel_err", "tolerance"):
            return "" if np.isnan(value) else repr(float(value))
        return _csv_field(str(value))

    with open(path, "w", newline="", encoding="utf-8") as file:
        file.write(",".join(map(_csv_field, FIRST_DIVERGENCE_COLUMNS)) + "\n")
        for f in report.findings:
            file.write(",".join(text(column, getattr(f, column)) for column in FIRST_DIVERGENCE_COLUMNS) + "\n")


HEATMAP = re.compile(r"^heatmap-[a-z0-9_]+-[a-z]+\.png$")  # heatmap-<reference>-<mode>.png


def report_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The report files of ours in ``folder``: the two CSVs and the heatmaps (what a later run replaces)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = {DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV}
    return sorted(p for p in folder.iterdir() if p.is_file() and (p.name in names or HEATMAP.match(p.name)))


def report_outputs(report: "Report", out_dir: str | os.PathLike[str], plot: bool = False) -> list[Output]:
    """The ``Output``s of one report: divergence.csv, first_divergence.csv, and the heatmaps when ``plot``."""
    out_dir = Path(out_dir)
    outputs = [Output(out_dir / DIVERGENCE_CSV, lambda temporary: write_divergence_csv(report, temporary)),
               Output(out_dir / FIRST_DIVERGENCE_CSV, lambda temporary: write_first_divergence_csv(report, temporary))]
    if plot:
        from lstm_compare.output.plot import heatmap_outputs  # matplotlib, only when pictures are asked for

        outputs += heatmap_outputs(report, out_dir)
    return outputs


def write_reports(report: "Report", out_dir: str | os.PathLike[str], plot: bool = False) -> list[Path]:
    """Write divergence.csv, first_divergence.csv (and, with ``plot``, the heatmaps) into ``out_dir``, all or
    nothing; heatmaps an earlier run left there are removed.  Returns the paths written."""
    outputs = report_outputs(report, out_dir, plot)
    stale = set(report_files(out_dir)) - {o.target for o in outputs}
    return commit(outputs, remove=sorted(stale))
