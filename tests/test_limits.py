"""What is refused before any work (issue 9: 12, 14, 19, 21, 24): runs that would not fit in memory, gradchecks
that would take too long, configurations a reference cannot take; and a failing configuration is named."""

import time

import pytest

import lstm_compare
import lstm_compare.measuring.limits
import lstm_compare.catalogs.suite
from lstm_compare.frontends.cli import main
from lstm_compare.errors import UsageError
from lstm_compare.measuring.limits import check_fits, check_gradcheck_fits, gradcheck_seconds, needed_bytes, parameter_count
from lstm_compare.lstm.problem import ProblemSpec, make_model_problem
from lstm_compare.catalogs.suite import GRIDS, Block, Grid, run_suite
from helpers import write_impl
from lstm_compare.lstm.model import Model

GIB = 2 ** 30

# Peak RSS measured with /usr/bin/time -v (report --dtype float32, torch and jax, X=3 O=1), and the figure.
MEASURED_PEAKS = {(1000, 64): 675432 * 1024, (3000, 64): 892852 * 1024, (1000, 256): 909956 * 1024,
                  (300, 1024): 1164440 * 1024, (5000, 512): 4.07e9}


def cli(capsys, *argv):
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        main([*map(str, argv)])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err, time.monotonic() - start


@pytest.mark.parametrize("steps,hidden", sorted(MEASURED_PEAKS))
def test_the_memory_estimate_covers_each_measured_peak_within_15_percent(steps, hidden):
    needed = needed_bytes(ProblemSpec(steps=steps, hidden=hidden, dtype="float32"))
    assert 1.0 <= needed / MEASURED_PEAKS[steps, hidden] <= 1.15


@pytest.mark.parametrize("flags", [("--hidden", "100000"), ("--steps", "1000000000")])
@pytest.mark.parametrize("command", ["report", "gradcheck"])
def test_an_oversized_problem_is_refused_in_one_line_before_anything_is_allocated(capsys, tmp_path, command, flags):
    extra = ("--out", tmp_path / "out") if command == "report" else ()
    code, out, err, seconds = cli(capsys, command, *flags, *extra)
    assert (code, out) == (2, "") and err.count("\n") == 1 and seconds < 5
    assert "GiB of memory, more than the" in err and "available here" in err
    assert not (tmp_path / "out").exists()


def test_the_refusal_says_how_long_a_sequence_would_fit(monkeypatch):
    monkeypatch.setattr(lstm_compare.measuring.limits, "available_bytes", lambda: 2 * GIB)
    spec = ProblemSpec(steps=5000, hidden=512)
    with pytest.raises(UsageError) as raised:
        check_fits(spec)
    fits = int(str(raised.value).split("up to T=")[1].split(" ")[0])
    allocated = lambda steps: needed_bytes(ProblemSpec(steps=steps, hidden=512)) - lstm_compare.measuring.limits.BASE_BYTES  # noqa
    assert allocated(fits) <= 2 * GIB < allocated(fits + 1)


def test_compare_run_refuses_what_does_not_fit_too(monkeypatch):
    monkeypatch.setattr(lstm_compare.measuring.limits, "available_bytes", lambda: GIB // 2)
    with pytest.raises(UsageError, match="would allocate about .* GiB of memory"):
        lstm_compare.run("no_such_file.py", lstm_compare.Config(spec=ProblemSpec(steps=5000, hidden=512)))


def test_a_gradcheck_that_would_take_too_long_is_refused_saying_what_would_fit(capsys):
    code, out, err, seconds = cli(capsys, "gradcheck", "--steps", "5000", "--hidden", "512")
    assert (code, out) == (2, "") and err.count("\n") == 1 and seconds < 5
    entries = int(err.split("--max-entries ")[1].split(" ")[0])
    spec = ProblemSpec(steps=5000, hidden=512)
    assert gradcheck_seconds(spec, entries) <= lstm_compare.measuring.limits.GRADCHECK_SECONDS < gradcheck_seconds(spec, entries + 1)
    check_gradcheck_fits(spec, entries)  # what it proposes is accepted


def test_the_numeric_reference_skips_the_configurations_too_large_for_it_and_says_so():
    grid = Grid("mixed", (Block(steps=(2, 300), dtypes=("float64",), batches=(None,), zero_states=(False,)),))
    result = run_suite(lstm_compare.catalogs.suite.bind("lstm_compare/handrolled/question_lstm.py"), grid, references=("numeric",),
                       catalog=())
    assert [c.spec.steps for c in result.configs] == [2]
    assert any("numeric reference skipped 1 configuration(s) too large for it (T=300" in n for n in result.notes)


def test_a_grid_that_no_chosen_reference_can_take_is_refused_before_any_work():
    grid = Grid("long", (Block(steps=(300,), dtypes=("float64",), batches=(None,), zero_states=(False,)),))
    with pytest.raises(UsageError, match="no configuration of this grid fits the numeric reference"):
        run_suite("lstm_compare/handrolled/question_lstm.py", grid, references=("numeric",), catalog=())


def test_a_configuration_that_cannot_be_compared_is_named_in_the_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(GRIDS, "quick", Grid("one", (Block(steps=(3,), dtypes=("float64",), batches=(None,),
                                                            zero_states=(False,)),)))
    monkeypatch.setattr(lstm_compare.catalogs.suite, "CATALOG", ())
    path = write_impl(tmp_path, "wrong_shape", ("    return y, h, c, cache", "    return y, h[:-1], c, cache"))
    code, out, err, _ = cli(capsys, "run", "--quick", "--impl", path, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("lstm-compare: error: T=3 H=5 X=3 O=1 float64 seed=0: ") and "shape" in err


def test_a_small_problem_is_not_refused_on_a_machine_with_little_memory_left(monkeypatch):
    monkeypatch.setattr(lstm_compare.measuring.limits, "available_bytes", lambda: 64 * 2 ** 20)  # less than the libraries take
    check_fits(ProblemSpec())


def test_a_gradcheck_refusal_proposes_no_sample_smaller_than_gradcheck_takes():
    with pytest.raises(UsageError) as raised:
        check_gradcheck_fits(ProblemSpec(steps=100000, hidden=64), 1000, minimum=80)
    assert "--max-entries" not in str(raised.value) and "--steps" in str(raised.value)


@pytest.mark.parametrize("model", [Model(layers=2, bidirectional=True), Model(proj=3, peepholes=True),
                                   Model(layers=3, bidirectional=True, proj=2, peepholes=True)])
def test_a_model_variants_estimate_counts_its_parameters_and_every_layer_and_direction(model):
    spec = ProblemSpec(model=model)
    assert parameter_count(spec) == sum(v.size for v in make_model_problem(spec).params.values())
    one_slot = ProblemSpec(model=Model(proj=model.proj, peepholes=model.peepholes))
    more_slots = len(model.slots()) > 1
    base = lstm_compare.measuring.limits.BASE_BYTES
    assert (needed_bytes(spec) - base > 1.5 * (needed_bytes(one_slot) - base)) == more_slots
