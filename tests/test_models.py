"""Model variants through the engine and the command line: correct models are clean in every mode and dtype, each
(layer, direction) is located and named, and a model the file cannot run is one sentence (exit 2)."""

import numpy as np
import pytest

import inspect

import lstm_compare.handrolled.cs231n_lstm
import lstm_compare.handrolled.variant_layers_lstm
import lstm_compare.handrolled.variant_lstm
from lstm_compare.frontends.commands.common import own_implementation
from lstm_compare import Config, ProblemSpec, run
from lstm_compare.catalogs.catalog import Bug, Location, check
from lstm_compare.errors import UsageError
from lstm_compare.modes.gradcheck import gradcheck
from lstm_compare.lstm.model import Model
import types

from lstm_compare import assert_lstm_matches
from tests.helpers import edited, report_cli, write_edited, write_impl

VARIANT_SOURCE = inspect.getsource(lstm_compare.handrolled.variant_lstm)


def write_edited_module(old, new):
    """lstm_compare/handrolled/variant_lstm.py with one edit, as a fresh module object."""
    module = types.ModuleType("edited_variant")
    exec(compile(edited(VARIANT_SOURCE, (old, new)), "<edited variant>", "exec"), module.__dict__)
    return module

VARIANT = lstm_compare.handrolled.variant_lstm
EVERYTHING = Model(layers=3, bidirectional=True, proj=2, peepholes=True)
# The acceptance grid at T = 300: each variant on its own and all at once, in both dtypes.
CLEAN = [Model(layers=2, bidirectional=True), Model(proj=3), Model(peepholes=True), EVERYTHING]


def describe(model):
    return model.describe().replace(", ", "-").replace(" ", "")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model", CLEAN, ids=describe)
def test_correct_variants_are_clean_in_every_mode_at_T_300(model, dtype):
    report = run(VARIANT, Config(spec=ProblemSpec(steps=300, dtype=dtype, model=model)))
    assert not report.diverged and not report.failures, [f.message for f in report.findings]
    slots = {(d.layer, d.direction) for d in report.diffs if d.mode == "isolated"}
    assert slots == {(slot.layer, slot.direction) for slot in model.slots()}
    sequence = {(d.layer, d.direction) for d in report.diffs if d.mode == "sequence"}
    assert sequence == slots | {(0, "")}  # the whole-model functions, per slot and the model's own
    compared = {d.tensor for d in report.diffs if d.mode == "isolated"}
    assert {"f_pre", "c", "h", "dWf", "dbo", "dh_prev", "dc_prev"} <= compared
    assert ({"dpf", "dpi", "dpo"} <= compared) == model.peepholes and ("dWr" in compared) == bool(model.proj)
    assert ("m" in compared) == bool(model.proj)  # the projected cell's m = o * tanh(c), from the dict cache
    assert not {"y", "dWy", "dby"} & compared  # a slot's identity head is the harness's, never compared


def test_the_per_layer_parameter_shape_runs_the_same_model():
    spec = ProblemSpec(model=Model(layers=2, bidirectional=True, proj=3, peepholes=True), batch=2)
    flat = run(VARIANT, Config(spec=spec, modes=("sequence",)))
    layers = run(lstm_compare.handrolled.variant_layers_lstm, Config(spec=spec, modes=("sequence",)))
    assert not flat.diverged and not layers.diverged
    for a, b in zip(flat.diffs, layers.diffs, strict=True):
        assert (a.tensor, a.layer, a.direction) == (b.tensor, b.layer, b.direction)
        np.testing.assert_array_equal(a.actual, b.actual)


def test_a_cs231n_cell_stacks_and_runs_both_directions_through_the_harness():
    spec = ProblemSpec(model=Model(layers=2, bidirectional=True), batch=3)
    report = run(lstm_compare.handrolled.cs231n_lstm, Config(spec=spec))
    assert not report.diverged
    assert {(d.layer, d.direction) for d in report.diffs} == {(1, "forward"), (1, "reverse"), (2, "forward"),
                                                              (2, "reverse")}
    assert any("sequence mode skipped" in note for note in report.skipped)  # no whole-model functions


CS231N_FORGET = Bug("cs231n_forget_derivative", "df leaves out prev_c", "df = dc * prev_c * f * (1 - f)",
                    "df = dc * f * (1 - f)", Location.at("isolated", "backward", -1, "dWf", 2, "reverse"),
                    ProblemSpec(model=Model(layers=2, bidirectional=True)), "lstm_compare.handrolled.cs231n_lstm")


def test_a_cell_bug_shows_first_in_the_last_layer_backward_and_is_named_so():
    # The backward pass starts at the top: layer 2's reverse direction is differentiated first.
    result = check(CS231N_FORGET)
    assert result.ok, result.found
    report = run(CS231N_FORGET.module(), Config(spec=CS231N_FORGET.spec, modes=("isolated",)))
    finding = report.findings[0]
    assert finding.message.startswith("isolated layer 2, reverse direction, backward step 11 (time 0): ")
    assert finding.place() == "layer 2, reverse direction, backward step 11, gate f, dWf"


def test_a_wiring_bug_is_named_by_layer_in_sequence_mode(tmp_path):
    edit = ("seq = out  # the next layer reads this layer's h", "seq = cell  # the next layer reads this layer's h")
    report = run(write_edited(tmp_path, "wired", VARIANT_SOURCE, edit),
                 Config(spec=ProblemSpec(model=Model(layers=2)), modes=("sequence",)))
    assert [f.place() for f in report.findings] == ["layer 2, forward direction, forward step 0, c"] * 2


@pytest.mark.parametrize("argv, sentence", [
    (["--impl", "lstm_compare/handrolled/cs231n_lstm.py", "--peepholes"], "whose cell has no parameters for peepholes"),
    (["--proj", "5"], "the projection size P must be 0 (none) or between 1 and H - 1 = 4, not 5"),
    (["--layers", "0"], "argument --layers: 0 is below the minimum of 1"),
    (["--reference", "numeric", "--layers", "2"], "reference 'numeric' does not run model variants"),
])
def test_a_model_the_run_cannot_take_is_one_sentence_and_exit_2(argv, sentence, tmp_path, capsys):
    code, _, err = report_cli(capsys, *argv, "--out", tmp_path)
    assert code == 2
    assert sentence in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_gradcheck_refuses_a_model():
    with pytest.raises(UsageError, match="gradcheck checks one cell, not a model"):
        gradcheck(VARIANT, ProblemSpec(model=Model(layers=2)))


@pytest.mark.parametrize("old, new, sentence", [
    ("    return {name: grads[name] for name in params}, dinputs, np.stack(dh0), np.stack(dc0)",
     "    return {**grads, 'Wq_l1': dinputs}, dinputs, np.stack(dh0), np.stack(dc0)",
     "has an entry 'Wq_l1' that is not a parameter of this model"),
    ("    return outputs, loss, np.stack(hs), np.stack(cs), caches", "    return outputs, loss, hs[0], np.stack(cs), caches",
     "hs returned by lstm_model_loss (one output sequence per layer) has shape"),
])
def test_whole_model_functions_returning_the_wrong_thing_are_one_sentence(old, new, sentence, tmp_path):
    edited = write_edited(tmp_path, "wrong", VARIANT_SOURCE, (old, new))
    with pytest.raises(UsageError, match=sentence.replace("(", r"\(").replace(")", r"\)")):
        run(edited, Config(spec=ProblemSpec(model=Model(layers=2)), modes=("sequence",)))


def test_batch_on_a_single_vector_file_is_one_sentence_in_a_model_too(tmp_path, capsys):
    path = write_impl(tmp_path, "single", ("    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)",
                                           "    assert x.ndim == 1, 'one vector at a time'\n"
                                           "    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)"))
    code, _, err = report_cli(capsys, "--impl", path, "--layers", "2", "--batch", "3", "--out", tmp_path / "out")
    assert code == 2 and "takes single vectors only" in err and "leave out --batch" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_assert_lstm_matches_and_the_fixture_take_a_model(lstm_compare):
    assert_lstm_matches(VARIANT, layers=2, bidirectional=True, proj=3, peepholes=True, steps=6)
    report = lstm_compare(VARIANT, layers=2, bidirectional=True, steps=6, baseline=False)
    assert {(d.layer, d.direction) for d in report.diffs} >= {(2, "reverse")}
    broken = write_edited_module("seq = out  # the next layer reads this layer's h",
                                 "seq = cell  # the next layer reads this layer's h")
    with pytest.raises(AssertionError, match="layer 2, forward direction, forward step 0, tensor c\nMismatched "
                                             "elements: 5 / 5"):
        assert_lstm_matches(broken, layers=2, steps=6)


def test_a_models_baseline_keeps_each_layer_and_direction_apart():
    from lstm_compare.output.baseline import baseline_frame

    report = run(VARIANT, Config(spec=ProblemSpec(model=Model(layers=2, bidirectional=True), steps=6)))
    frame = baseline_frame(report)
    keys = list(zip(frame["reference"], frame["mode"], frame["phase"], frame["tensor"]))
    assert len(keys) == len(set(keys)) == len(report.diffs)
    assert "dWf (layer 2, reverse)" in set(frame["tensor"]) and "dWf" in set(frame["tensor"])


def test_a_variant_file_runs_as_a_single_cell_too():  # its CACHE_FIELDS name m, which a plain cell lacks
    report = run(VARIANT, Config(spec=ProblemSpec(steps=6)))
    assert not report.diverged and "m" not in {d.tensor for d in report.diffs}


def test_without_impl_a_model_runs_the_projects_own_variant_model(tmp_path, capsys):
    code, out, _ = report_cli(capsys, "--peepholes", "--proj", "3", "--steps", "6", "--out", tmp_path)
    variant = own_implementation(variant=True)
    note, header = out.splitlines()[:2]
    assert code == 0 and note == f"lstm-compare: no --impl given, so this checks the tool's own LSTM, {variant}"
    assert header.startswith(f"lstm-compare: {variant} against torch, jax")


def test_a_cell_that_ignores_a_projection_is_one_sentence_naming_its_line(tmp_path, capsys):
    code, _, err = report_cli(capsys, "--impl", "lstm_compare/handrolled/question_lstm.py", "--proj", "3", "--batch", "4",
                              "--out", tmp_path)
    assert code == 2 and "cell cannot run one step with a projection" in err and "line " in err
    assert "single vectors" not in err and len(err.strip().splitlines()) == 1


def test_the_suite_skips_the_variants_a_cell_cannot_take_and_says_why():
    from lstm_compare.catalogs.suite import Block, Grid, run_suite

    grid = Grid("tiny", (Block(steps=(3,), batches=(None,), zero_states=(False,), dtypes=("float64",),
                               models=(Model(layers=2), Model(peepholes=True))),))
    result = run_suite("lstm_compare/handrolled/question_lstm.py", grid, catalog=())
    assert [c.spec.model for c in result.configs] == [Model(layers=2)] and result.ok
    assert any("1 model-variant configuration(s) skipped" in note and "does not take peepholes" in note
               for note in result.notes)


def test_exceptions_in_a_model_name_their_layer_and_direction(tmp_path):
    raising = write_edited(tmp_path, "raising", VARIANT_SOURCE, (
        "    return {name: grads[name] for name in params}, dinputs, np.stack(dh0), np.stack(dc0)",
        "    raise KeyError('boom')"))
    report = run(raising, Config(spec=ProblemSpec(model=Model(layers=2), steps=4), modes=("sequence",)))
    assert [f.message.split(":")[0] for f in report.failures] == ["sequence the whole model, backward (whole "
                                                                  "sequence)"] * 2
    cs231n = write_edited(tmp_path, "cs", inspect.getsource(lstm_compare.handrolled.cs231n_lstm),
                          ("df = dc * prev_c * f * (1 - f)", "df = dc * prev_c * f * (1 - f) / (t := None)"))
    report = run(cs231n, Config(spec=ProblemSpec(model=Model(layers=2, bidirectional=True), steps=4),
                                modes=("isolated",)))
    assert report.findings[0].message.startswith("isolated layer 2, reverse direction, backward step 3: ")


def test_a_loss_returned_as_an_array_is_one_sentence(tmp_path):
    edit = ("    return outputs, loss, np.stack(hs), np.stack(cs), caches",
            "    return outputs, np.array([loss, loss]), np.stack(hs), np.stack(cs), caches")
    with pytest.raises(UsageError, match=r"the loss returned by lstm_model_loss must be one number"):
        run(write_edited(tmp_path, "loss", VARIANT_SOURCE, edit),
            Config(spec=ProblemSpec(model=Model(layers=2), steps=4), modes=("sequence",)))


@pytest.mark.parametrize("old, new, hint", [
    ("            dh0[k * D + d], dc0[k * D + d] = dh, dc", "            dh0[k * D + d], dc0[k * D + d] = -dh, dc",
     "initial-state gradient alone (every parameter's matches)"),
])
def test_wiring_hints_tell_an_initial_state_gradient_from_the_gradient_sent_down(old, new, hint, tmp_path):
    report = run(write_edited(tmp_path, "wired", VARIANT_SOURCE, (old, new)),
                 Config(spec=ProblemSpec(model=Model(layers=2), steps=4), modes=("sequence",)))
    assert hint in report.findings[0].message and report.findings[0].tensor == "dh0"
