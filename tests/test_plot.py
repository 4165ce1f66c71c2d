"""Divergence heatmaps: what each cell holds, where the first divergence is boxed, and the PNGs written."""


import numpy as np
import pytest

from lstm_compare import handrolled
from lstm_compare import Config, ProblemSpec, run
from lstm_compare.catalogs.catalog import CATALOG
from lstm_compare.frontends.cli import main
from lstm_compare.output.plot import HIGH, LOW, heatmap, write_heatmaps
from lstm_compare.usercode.conventions import bind
from helpers import impl_module, without

FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def forget_bug_report():
    return run(FORGET_BUG.module())


@pytest.fixture(scope="module")
def correct_report():
    return run(handrolled, Config(spec=ProblemSpec(), modes=("isolated", "sequence")))


def cell(heat, phase, tensor, column):
    panel = next(p for p in heat.panels if p.phase == phase)
    return panel.values[panel.tensors.index(tensor), heat.columns.index(column)]


def test_the_forget_gate_bug_is_boxed_at_dwf_of_the_last_step_in_isolated_mode(forget_bug_report):
    heat = heatmap(forget_bug_report, "torch", "isolated")
    assert heat.first == ("backward", "dWf", "11")
    assert heat.note.startswith("isolated backward step 11: ")
    assert heat.columns == tuple(str(t) for t in range(12))
    forward, backward = heat.panels
    assert forward.tensors == bind(handrolled).forward_names and backward.tensors == bind(handrolled).backward_names
    assert (forward.values < 0).all()  # every forward tensor within tolerance, at every step
    assert cell(heat, "backward", "dWf", "11") > 0 and cell(heat, "backward", "dWo", "11") < 0


def test_sequence_mode_has_a_total_column_and_grey_cells_where_nothing_is_per_step(forget_bug_report):
    heat = heatmap(forget_bug_report, "jax", "sequence")
    assert heat.columns[-1] == "total"
    forward, backward = heat.panels
    assert forward.tensors == ("y", "loss", "h_last", "c_last")
    assert np.isnan(cell(heat, "forward", "loss", "0")) and np.isnan(cell(heat, "backward", "dWf", "5"))
    assert cell(heat, "forward", "loss", "total") < 0
    assert heat.first == ("backward", "dWo", "total")


def test_a_correct_lstm_has_no_box_and_every_cell_below_zero(correct_report):
    heat = heatmap(correct_report, "jax", "isolated")
    assert heat.first is None and heat.note == "no divergence"
    assert all((p.values < 0).all() for p in heat.panels)
    assert heatmap(correct_report, "jax", "chained").panels == ()  # a mode that did not run has nothing to draw


def test_nan_takes_the_top_of_the_scale_and_an_exact_match_the_bottom():
    nan_module = impl_module("nan_dwo", ('"Wo": _sum_outer(xh, do_pre),', '"Wo": _sum_outer(xh, do_pre) * np.nan,'),
                             *without("lstm_loss", "dlstm_loss"))
    heat = heatmap(run(nan_module, Config(modes=("isolated",))), "torch", "isolated")
    assert cell(heat, "backward", "dWo", "11") == HIGH
    assert heat.first == ("backward", "dWo", "11")
    assert "NaN first appears in dWo" in heat.note
    assert cell(heat, "forward", "cache.xh", "0") == LOW  # the inputs, copied exactly: zero error


def test_write_heatmaps_draws_one_small_png_per_reference_and_mode(tmp_path):
    report = run(FORGET_BUG.module(), Config(references=("jax", "torch"), modes=("isolated", "sequence")))
    paths = write_heatmaps(report, tmp_path)
    assert [p.name for p in paths] == [f"heatmap-{r}-{m}.png" for r in ("jax", "torch")
                                       for m in ("isolated", "sequence")]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) < 200_000


def test_report_plot_flag_writes_one_heatmap_per_mode_beside_the_csvs(tmp_path, capsys):
    path = FORGET_BUG.write(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--impl", str(path), "--reference", "jax", "--out", str(tmp_path / "out"), "--plot"])
    assert exit_.value.code == 1
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["divergence.csv", "first_divergence.csv", "heatmap-jax-chained.png", "heatmap-jax-isolated.png",
                     "heatmap-jax-sequence.png"]
    assert "heatmap-jax-isolated.png" in capsys.readouterr().out
