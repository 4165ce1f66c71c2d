"""Divergence heatmaps: one PNG per reference x mode, steps across, tensors down, colour = log10(error / allowed).

Forward and backward are two panels, one above the other, sharing the step axis; the first divergence is boxed.
Below 0 (blue) a tensor is within tolerance; above 0 (yellow to red) it diverged.  Drawn with matplotlib's
object API on an Agg canvas: no pyplot, no global state, no display needed.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_compare.lstm.where import MODES
from lstm_compare.locating.locate import order_key
from lstm_compare.output.text import shorten

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from lstm_compare.modes.records import Report
    from lstm_compare.output.atomic import Output

LOW, HIGH = -8.0, 8.0  # the colour scale, in log10(error / allowed); beyond it the end colours
PHASE_TITLES = {"forward": "forward  (computed t = 0 \u2192 T-1)", "backward": "backward  (computed t = T-1 \u2192 0)"}


@dataclass(frozen=True)
class Panel:
    """One phase: ``values[row, column]`` is log10(max_abs_err / allowed) (NaN where nothing was compared)."""

    phase: str
    tensors: tuple[str, ...]  # row labels, in the order the computation runs them
    values: np.ndarray  # (len(tensors), len(columns))


@dataclass(frozen=True)
class Heatmap:
    """Everything one picture shows, computed without matplotlib (and tested without it)."""

    reference: str
    mode: str
    title: str
    columns: tuple[str, ...]  # '0' ... 'T-1', then 'total' when whole-sequence values were compared
    panels: tuple[Panel, ...]  # forward, then backward (those that have data)
    first: tuple[str, str, str] | None  # (phase, tensor, column) of the first divergence, boxed
    note: str  # the first divergence in words, or why nothing is boxed


def heatmap(report: "Report", reference: str, mode: str) -> Heatmap:
    """The ``Heatmap`` of one reference x mode of ``report``."""
    T = report.config.spec.steps
    diffs = [d for d in report.diffs if (d.reference, d.mode) == (reference, mode)]
    has_total = any((d.steps < 0).any() for d in diffs)
    columns = tuple(str(t) for t in range(T)) + (("total",) if has_total else ())
    panels: list[Panel] = []
    in_model = not report.config.spec.model.plain
    for phase in ("forward", "backward"):  # rows in the order the computation runs them (locate.order_key)
        present = {row_label(d.tensor, d.layer, d.direction, in_model): d for d in diffs if d.phase == phase}
        rows = sorted(present, key=lambda label: order_key(phase, None, present[label].tensor, T,
                                                           present[label].layer, present[label].direction))
        tensors = tuple(rows)
        if not tensors:
            continue
        values = np.full((len(tensors), len(columns)), np.nan)
        for row, name in enumerate(tensors):
            d = present[name]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.log10(d.max_abs_err / d.tolerance)
            cols = np.where(d.steps < 0, len(columns) - 1, d.steps)
            values[row, cols] = np.nan_to_num(ratio, nan=HIGH, posinf=HIGH, neginf=LOW)
        panels.append(Panel(phase, tensors, values))
    finding = next((f for f in report.findings if (f.reference, f.mode) == (reference, mode)), None)
    first, note = None, "no divergence"
    if finding is not None:
        column = "total" if finding.step is None else str(finding.step)
        label = row_label(finding.tensor, finding.layer, finding.direction, in_model)
        first = None if finding.tensor == "exception" else (finding.phase, label, column)
        note = shorten(finding.message)
    title = f"{report.implementation}: {mode} mode against {reference}  ({report.config.spec.label()})"
    return Heatmap(reference, mode, title, columns, tuple(panels), first, note)


def row_label(tensor: str, layer: int, direction: str, in_model: bool) -> str:
    """A heatmap row: the tensor, prefixed in a model variant with its slot ('L2r dWf': layer 2, reverse direction;
    'model y' for the model's head, loss and input gradient)."""
    if not in_model:
        return tensor
    return f"model {tensor}" if layer == 0 else f"L{layer}{'r' if direction == 'reverse' else ''} {tensor}"


def _colormap() -> "Colormap":
    """Blues below 0 (darker = more accurate), yellow to dark red above: the sign reads at a glance."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    below = colormaps["Blues_r"](np.linspace(0.05, 0.75, 128))
    above = colormaps["YlOrRd"](np.linspace(0.3, 1.0, 128))
    cmap = ListedColormap(np.vstack([below, above]), name="lstm_compare")
    return cmap.with_extremes(bad="#eeeeee")


# The layout, in inches: fixed margins instead of a layout engine, which would triple the drawing time.
ROW_IN, COL_IN, MIN_PLOT_IN, MAX_WIDTH_IN = 0.24, 0.32, 5.5, 16.0
LEFT_IN, RIGHT_IN, BAR_IN, BOTTOM_IN, PANEL_TITLE_IN, LINE_IN = 1.05, 1.05, 0.16, 0.55, 0.32, 0.17


def draw(heat: Heatmap) -> "Figure":
    """A matplotlib ``Figure`` for one ``Heatmap``."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    n_cols = len(heat.columns)
    plot_w = min(max(COL_IN * n_cols, MIN_PLOT_IN), MAX_WIDTH_IN - LEFT_IN - RIGHT_IN)
    width = LEFT_IN + plot_w + RIGHT_IN
    chars = int(width * 72 / (0.6 * 9))  # 9-point text takes about 5.4 points a character
    heading = f"{_wrap(heat.title, chars)}\n{_wrap(heat.note, chars)}"
    top = 0.12 + LINE_IN * (heading.count("\n") + 1)
    heights = [ROW_IN * len(p.tensors) for p in heat.panels]
    height = top + sum(heights) + PANEL_TITLE_IN * len(heights) + BOTTOM_IN
    fig = Figure(figsize=(width, height))
    fig.text(0.08 / width, 1 - 0.08 / height, heading, va="top", fontsize=9)
    norm, cmap = TwoSlopeNorm(vmin=LOW, vcenter=0.0, vmax=HIGH), _colormap()
    axes: list[Axes]
    y, axes = height - top, []
    for panel, h in zip(heat.panels, heights):
        y -= PANEL_TITLE_IN + h
        ax = fig.add_axes((LEFT_IN / width, y / height, plot_w / width, h / height),
                          sharex=axes[0] if axes else None)
        image = ax.imshow(np.ma.masked_invalid(panel.values), cmap=cmap, norm=norm, aspect="auto",
                          interpolation="nearest")
        _decorate(ax, heat, panel, n_cols)
        axes.append(ax)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    ticks = _step_ticks(n_cols)
    axes[-1].set_xticks(ticks, [heat.columns[k] for k in ticks], fontsize=8)
    grey = any(np.isnan(p.values).any() for p in heat.panels)
    axes[-1].set_xlabel("step t" + ("    (grey: not compared)" if grey else ""), fontsize=9)
    bar_ax = fig.add_axes(((LEFT_IN + plot_w + 0.15) / width, BOTTOM_IN / height, BAR_IN / width,
                           (height - top - PANEL_TITLE_IN - BOTTOM_IN) / height))
    bar = fig.colorbar(image, cax=bar_ax)
    bar.set_label("log10(error / allowed)   (> 0: diverged)", fontsize=8)
    bar.ax.tick_params(labelsize=8)
    return fig


def _decorate(ax: "Axes", heat: Heatmap, panel: Panel, n_cols: int) -> None:
    """Tensor labels, cell borders, the panel's title, and the box around the first divergence."""
    from matplotlib.patches import Rectangle

    ax.set_yticks(range(len(panel.tensors)), panel.tensors, fontsize=8)
    ax.set_xticks(np.arange(n_cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(panel.tensors) + 1) - 0.5, minor=True)
    if n_cols <= 60:  # cell borders help to count steps; on long sequences they would be all there is
        ax.grid(which="minor", color="white", linewidth=0.6)
    ax.tick_params(which="minor", length=0)
    title = PHASE_TITLES[panel.phase]
    if heat.first and heat.first[0] == panel.phase:
        row, col = panel.tensors.index(heat.first[1]), heat.columns.index(heat.first[2])
        for color, width in (("black", 4.5), ("white", 2.0)):  # visible on dark red and on dark blue
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=width,
                                   clip_on=False))
        if n_cols > 40:  # a one-step box is a sliver on a long sequence: add cross-hairs that lead to it
            ax.axvline(col, color="black", linewidth=0.8, linestyle=(0, (4, 3)))
            ax.axhline(row, color="black", linewidth=0.8, linestyle=(0, (4, 3)))
        where = "total" if heat.first[2] == "total" else f"step {heat.first[2]}"
        title += f"    \u25a1 first divergence: {heat.first[1]} at {where}"
    ax.set_title(title, loc="left", fontsize=9)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width=max(width, 60)))


def _step_ticks(n_cols: int) -> list[int]:
    """Every column for short sequences, about 20 evenly spaced ones (and the last) for long ones."""
    if n_cols <= 30:
        return list(range(n_cols))
    stride = int(np.ceil(n_cols / 20))
    return sorted(set(range(0, n_cols, stride)) | {n_cols - 1})


def heatmap_outputs(report: "Report", out_dir: str | os.PathLike[str], dpi: float = 110) -> list["Output"]:
    """One ``report.Output`` per reference x mode of ``report`` that has data: heatmap-<reference>-<mode>.png."""
    from lstm_compare.output.atomic import Output

    outputs: list[Output] = []  # mypy cannot type a lambda with a default argument (below)
    for reference in report.config.references:
        for mode in MODES:
            if mode not in report.config.modes:
                continue
            heat = heatmap(report, reference, mode)
            if heat.panels:
                outputs.append(Output(Path(out_dir) / f"heatmap-{reference}-{mode}.png",
                                      lambda path, heat=heat: _save(heat, path, dpi)))  # type: ignore[misc]
    return outputs


def _save(heat: Heatmap, path: str | os.PathLike[str], dpi: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = draw(heat)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format="png")


def write_heatmaps(report: "Report", out_dir: str | os.PathLike[str], dpi: float = 110) -> list[Path]:
    """Write heatmap-<reference>-<mode>.png for every reference x mode of ``report``, all or none (through a
    temporary each, like the CSVs); returns the paths."""
    from lstm_compare.output.atomic import commit

    return commit(heatmap_outputs(report, out_dir, dpi))
