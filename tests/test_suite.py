"""`lstm-compare run`: the grid it covers, what it writes, what it skips and says, and its exit codes.

The runs here use a one- or two-configuration grid at T=12, H=5, X=3, O=1 (shapes that JAX has compiled for the
other tests already) and one or two catalog bugs, monkeypatched in; the default grid itself runs in `make suite`.
"""

import inspect
import re
import textwrap

import pandas as pd
import pytest

import lstm_compare.catalogs.suite
import lstm_compare.handrolled.question_lstm
from lstm_compare import handrolled
from lstm_compare.catalogs.catalog import CATALOG, Bug, Location
from lstm_compare.frontends.cli import main
from lstm_compare.usercode.conventions import bind
from lstm_compare.catalogs.suite import GRIDS, Block, Grid, probe_batches, run_suite, slug, suite_frame
from lstm_compare.lstm.problem import ProblemSpec

TINY = Grid("tiny", (Block(steps=(12,), dtypes=("float64",), zero_states=(False,)),))  # unbatched and B=4
ONE = Grid("one", (Block(steps=(12,), dtypes=("float64",), batches=(None,), zero_states=(False,)),))
FORGET_BUG = next(bug for bug in CATALOG if bug.name == "forget_derivative_uses_c")

# handrolled's own step functions, refusing batches, and without the optional sequence functions.
UNBATCHED_ONLY = textwrap.dedent('''
    import numpy as np
    from lstm_compare.handrolled import dlstm, lstm as _lstm

    def lstm(params, x, h_prev, c_prev):
        if np.ndim(x) != 1:
            raise ValueError("one vector at a time")
        return _lstm(params, x, h_prev, c_prev)
''')


def run_cli(*argv):
    with pytest.raises(SystemExit) as exit_:
        main(["run", *argv])
    return exit_.value.code


@pytest.fixture
def tiny_suite(monkeypatch):
    """`lstm-compare run --quick` runs the tiny grid and only the forget-gate bug of the catalog."""
    monkeypatch.setitem(GRIDS, "quick", TINY)
    monkeypatch.setattr(lstm_compare.catalogs.suite, "CATALOG", (FORGET_BUG,))


def shapes(grid):
    """The distinct problem shapes of a grid: JAX compiles once for each."""
    return {(s.steps, s.batch, s.hidden, s.inputs, s.outputs, s.dtype, s.model) for s in grid.specs()}


def test_default_grid_covers_every_axis_the_issue_names():
    specs = GRIDS["default"].specs()
    assert {s.dtype for s in specs} == {"float64", "float32"}
    assert {s.batch for s in specs} == {None, 4}
    assert {s.zero_state for s in specs} == {False, True}
    assert min(s.steps for s in specs) == 1 and max(s.steps for s in specs if s.model.plain) == 200
    assert len({(s.hidden, s.inputs, s.outputs) for s in specs}) >= 3
    assert len({s.seed for s in specs}) >= 3
    assert len(specs) == len(set(specs)) == 70
    variants = [s.model for s in specs if not s.model.plain]  # 4 models x dtype x batch at T=12, one at T=300
    assert len(variants) == 18 and {m.layers for m in variants} == {1, 2, 3} and any(m.proj for m in variants)
    assert any(m.peepholes for m in variants) and any(m.bidirectional for m in variants)
    assert max(s.steps for s in specs if not s.model.plain) == 300


def test_default_grid_keeps_the_number_of_jax_compilations_modest():
    assert len(shapes(GRIDS["default"])) == 38  # 20 for the single cell, 18 for the model variants
    assert len(shapes(GRIDS["quick"])) < len(shapes(GRIDS["default"]))


def test_full_grid_adds_seeds_and_a_thousand_steps():
    full, default = GRIDS["full"].specs(), GRIDS["default"].specs()
    assert max(s.steps for s in full) == 1000
    assert len({s.seed for s in full}) > len({s.seed for s in default})
    assert set(GRIDS["quick"].specs()) < set(default) < set(full)


def test_slug_names_every_axis_of_a_configuration():
    spec = ProblemSpec(steps=12, hidden=5, inputs=3, outputs=1, batch=4, dtype="float32", seed=1, zero_state=True)
    assert slug(spec) == "T12-H5-X3-O1-B4-float32-seed1-zero"
    assert slug(ProblemSpec()) == "T12-H5-X3-O1-float64-seed0"


def test_probe_accepts_handrolled_and_names_why_a_file_takes_no_batches(tmp_path):
    assert probe_batches(bind(handrolled)) is None
    path = tmp_path / "unbatched.py"
    path.write_text(UNBATCHED_ONLY)
    reason = str(probe_batches(bind(path, "question")))
    assert reason == ("a one-step probe with a (2, 3) batch failed: lstm raised ValueError: one vector at a time "
                      "(line 7 of unbatched.py)")


def test_handrolled_passes_the_tiny_suite_and_the_forget_gate_bug_is_found_where_expected():
    result = run_suite(handrolled, TINY, catalog=(FORGET_BUG,))
    assert result.ok and result.notes == ()
    assert [c.spec.batch for c in result.configs] == [None, 4]
    [check] = result.catalog
    assert check.ok and check.result.found == {"torch": Location.at("isolated", "backward", 11, "dWf"),
                                               "jax": Location.at("isolated", "backward", 11, "dWf")}
    frame = suite_frame(result)
    assert len(frame) == 2 * 2 * 3  # configurations x references x modes
    assert set(frame["status"]) == {"match"} and set(frame["first_divergence"]) == {""}
    assert (frame["worst_rel_err"].astype(float) < 1e-13).all()


def test_run_writes_suite_and_catalog_csv_without_timings_and_exits_0(tiny_suite, tmp_path, capsys):
    assert run_cli("--quick", "--out", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "All 2 configurations match torch and jax in every mode." in out
    assert "Catalog self-check passed: all 1 bugs found where expected." in out
    assert re.search(r"T=12 H=5 X=3 O=1 B=4 float64 seed=0 .* torch, jax .* all .* none .* \d+\.\d\d", out)
    suite = pd.read_csv(tmp_path / "suite.csv", keep_default_na=False)
    assert list(suite.columns) == ["configuration", "reference", "mode", "status", "worst_rel_err",
                                   "worst_err_over_allowed", "first_divergence", "report"]
    assert list(suite["configuration"].unique()) == ["T=12 H=5 X=3 O=1 float64 seed=0",
                                                     "T=12 H=5 X=3 O=1 B=4 float64 seed=0"]
    catalog = pd.read_csv(tmp_path / "catalog.csv")
    assert catalog.to_dict("records") == [
        {"bug": "forget_derivative_uses_c", "reference": r, "expected": "isolated backward step 11, dWf",
         "found": "isolated backward step 11, dWf", "status": "found"} for r in ("torch", "jax")]
    assert not (tmp_path / "suite").exists()  # nothing diverged, so no divergence reports


def test_run_on_your_file_shows_only_its_rows_and_no_catalog_self_check(tiny_suite, tmp_path, capsys):
    impl = tmp_path / "my_lstm.py"
    impl.write_text(inspect.getsource(lstm_compare.handrolled.question_lstm))
    assert run_cli("--quick", "--impl", str(impl), "--out", str(tmp_path / "out")) == 0
    out = capsys.readouterr().out
    assert "All 2 configurations match" in out and "my_lstm.py" in out
    assert "bug " not in out and "forget_derivative" not in out and "Catalog" not in out
    assert len(pd.read_csv(tmp_path / "out" / "catalog.csv")) == 0


def test_suite_csv_is_identical_from_run_to_run(tiny_suite, tmp_path):
    assert run_cli("--quick", "--out", str(tmp_path / "a")) == 0
    assert run_cli("--quick", "--out", str(tmp_path / "b")) == 0
    for name in ("suite.csv", "catalog.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_diverging_file_exits_1_with_a_divergence_report_per_configuration(tiny_suite, tmp_path, capsys):
    path = FORGET_BUG.write(tmp_path)
    assert run_cli("--quick", "--impl", str(path), "--out", str(tmp_path / "out")) == 1
    out = capsys.readouterr().out
    assert "2 of 2 configurations diverged" in out
    suite = pd.read_csv(tmp_path / "out" / "suite.csv", keep_default_na=False)
    isolated = suite[(suite["mode"] == "isolated")]
    assert set(isolated["first_divergence"]) == {"backward step 11, gate f, dWf"}
    assert set(isolated["report"]) == {"suite/T12-H5-X3-O1-float64-seed0", "suite/T12-H5-X3-O1-B4-float64-seed0"}
    assert set(suite.loc[suite["mode"] == "sequence", "first_divergence"]) == {"backward (whole sequence), gate o, dWo"}
    folder = tmp_path / "out" / "suite" / "T12-H5-X3-O1-B4-float64-seed0"
    first = pd.read_csv(folder / "first_divergence.csv")
    assert set(first.loc[first["mode"] == "isolated", "tensor"]) == {"dWf"}
    assert list(folder.glob("*.png")) == []


def test_plot_draws_the_heatmaps_of_each_diverged_configuration_into_its_folder(monkeypatch, tmp_path):
    monkeypatch.setitem(GRIDS, "quick", ONE)
    monkeypatch.setattr(lstm_compare.catalogs.suite, "CATALOG", ())
    path = FORGET_BUG.write(tmp_path)
    assert run_cli("--quick", "--impl", str(path), "--reference", "jax", "--out", str(tmp_path), "--plot") == 1
    folder = tmp_path / "suite" / "T12-H5-X3-O1-float64-seed0"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"heatmap-jax-{m}.png"
                                                           for m in ("chained", "isolated", "sequence")]


def test_divergence_folders_of_an_earlier_run_are_removed(tiny_suite, tmp_path):
    path = FORGET_BUG.write(tmp_path)
    assert run_cli("--quick", "--impl", str(path), "--out", str(tmp_path)) == 1
    assert (tmp_path / "suite" / "T12-H5-X3-O1-float64-seed0" / "divergence.csv").is_file()
    assert run_cli("--quick", "--out", str(tmp_path)) == 0
    assert list((tmp_path / "suite").iterdir()) == []


def test_a_file_without_batches_or_sequence_functions_runs_the_rest_and_says_what_it_skipped(tiny_suite, tmp_path,
                                                                                             capsys):
    path = tmp_path / "unbatched.py"
    path.write_text(UNBATCHED_ONLY)
    assert run_cli("--quick", "--impl", str(path), "--out", str(tmp_path)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("batched configurations skipped: a one-step probe with a (2, 3) batch failed: lstm raised ValueError: "
            "one vector at a time (line 7 of unbatched.py).") in out
    assert "sequence mode skipped" in out
    suite = pd.read_csv(tmp_path / "suite.csv", keep_default_na=False)
    assert set(suite["configuration"]) == {"T=12 H=5 X=3 O=1 float64 seed=0"}
    assert set(suite["mode"]) == {"isolated", "chained"}


def test_a_catalog_bug_found_elsewhere_than_expected_fails_the_suite(monkeypatch, tmp_path, capsys):
    misplaced = Bug("forget_derivative_uses_c_misplaced", FORGET_BUG.description, FORGET_BUG.old, FORGET_BUG.new,
                    Location.at("isolated", "backward", -2, "dWf"))
    monkeypatch.setitem(GRIDS, "quick", ONE)
    monkeypatch.setattr(lstm_compare.catalogs.suite, "CATALOG", (misplaced,))
    assert run_cli("--quick", "--out", str(tmp_path)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "Catalog self-check failed: not found where expected: forget_derivative_uses_c_misplaced." in out
    catalog = pd.read_csv(tmp_path / "catalog.csv")
    assert set(catalog["status"]) == {"missed"}
    assert set(catalog["expected"]) == {"isolated backward step 10, dWf"}


def test_a_missing_file_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys):
    assert run_cli("--quick", "--impl", str(tmp_path / "nope.py"), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err == f"lstm-compare: error: {tmp_path / 'nope.py'} does not exist or is not a file.\n"
    assert not (tmp_path / "out").exists()


def test_quick_and_full_exclude_each_other(capsys):
    assert run_cli("--quick", "--full") == 2
    assert "not allowed with argument" in capsys.readouterr().err



def test_probe_reports_a_sys_exit_in_the_users_code_instead_of_exiting(tmp_path):
    path = tmp_path / "exits.py"
    path.write_text(UNBATCHED_ONLY.replace('raise ValueError("one vector at a time")', "raise SystemExit(3)"))
    reason = str(probe_batches(bind(path, "question")))
    assert reason.startswith("a one-step probe with a (2, 3) batch failed: lstm raised SystemExit: 3")
