"""Built-in conventions: each correct implementation in lstm_compare/handrolled/ matches both references in every mode, each
convention's catalog bug is located where expected, and the weight layouts convert exactly both ways."""

import inspect

import numpy as np
import pytest

import lstm_compare.handrolled.coursera_lstm
import lstm_compare.handrolled.cs231n_lstm
import lstm_compare.handrolled.karpathy_lstm
import lstm_compare.handrolled.question_lstm
from lstm_compare import Config, ProblemSpec, UsageError, run
from lstm_compare.catalogs.catalog import check
from lstm_compare.catalogs.conventions import CONVENTION_CATALOG
from lstm_compare.usercode.conventions import bind, detect
from lstm_compare.usercode.conventions.layout import Sizes, locate_entry, to_internal, to_user
from lstm_compare.lstm.problem import make_problem
from lstm_compare.lstm.cell import PARAM_NAMES

MODULES = {"question": lstm_compare.handrolled.question_lstm, "cs231n": lstm_compare.handrolled.cs231n_lstm,
           "coursera": lstm_compare.handrolled.coursera_lstm, "karpathy": lstm_compare.handrolled.karpathy_lstm}
REFERENCES = ("torch", "jax")


@pytest.mark.parametrize("convention", MODULES)
def test_each_convention_is_detected_from_the_names_its_file_defines(convention):
    assert detect(MODULES[convention])[0] == convention
    assert bind(MODULES[convention]).convention == convention


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch", [None, 4])
@pytest.mark.parametrize("convention", ["cs231n", "coursera", "karpathy"])
def test_correct_implementation_matches_both_references_in_every_mode(convention, batch, dtype):
    report = run(MODULES[convention], Config(spec=ProblemSpec(batch=batch, dtype=dtype), references=REFERENCES))
    assert report.findings == () and report.failures == ()
    compared = {(d.reference, d.mode, d.phase) for d in report.diffs}
    assert compared == {(r, m, p) for r in REFERENCES for m in ("isolated", "chained", "sequence")
                        for p in ("forward", "backward")}
    tensors = {d.tensor for d in report.diffs if d.mode == "isolated"}
    assert {"f", "i", "g", "o", "c", "h", "dWf", "dWi", "dWg", "dWo", "dbf", "dx", "dh_prev", "dc_prev"} <= tensors
    assert not {"y", "dWy", "dby"} & tensors  # the harness owns the head of head-less conventions
    sequence_totals = {d.tensor for d in report.diffs if d.mode == "sequence" and (d.steps < 0).all()}
    assert {"dWf", "dbo", "dh0"} <= sequence_totals


@pytest.mark.parametrize("bug", CONVENTION_CATALOG, ids=[bug.name for bug in CONVENTION_CATALOG])
def test_convention_catalog_bug_is_located_exactly_where_it_must_be(bug):
    result = check(bug, REFERENCES)
    assert result.ok, f"{bug.name}: expected {result.expected}, found {result.found}"


@pytest.mark.parametrize("convention", MODULES)
def test_layout_round_trip_is_exact_and_every_entry_is_located(convention):
    layout = bind(MODULES[convention]).layout
    params = make_problem(ProblemSpec(hidden=4, inputs=3, outputs=2, seed=3)).params
    user = to_user(layout, params)
    back = to_internal(layout, user, Sizes.of(params))
    assert back.keys() <= set(PARAM_NAMES) and {"Wf", "Wi", "Wg", "Wo", "bf", "bi", "bg", "bo"} <= back.keys()
    for name, value in back.items():
        np.testing.assert_array_equal(value, params[name])
        for index in np.ndindex(value.shape):
            matrix, user_index, gate = locate_entry(layout, name, index, Sizes.of(params))
            assert user[matrix.name][user_index] == value[index]


def test_cs231n_blocks_are_ordered_i_f_o_g_and_coursera_acts_on_a_then_x_from_the_left():
    params = make_problem(ProblemSpec(hidden=4, inputs=3, seed=1)).params
    cs = to_user(bind(lstm_compare.handrolled.cs231n_lstm).layout, params)
    np.testing.assert_array_equal(cs["Wx"][:, 8:12], params["Wo"][:3])  # the third block is o
    np.testing.assert_array_equal(cs["Wh"][:, 4:8], params["Wf"][3:])  # the second block is f
    co = to_user(bind(lstm_compare.handrolled.coursera_lstm).layout, params)
    np.testing.assert_array_equal(co["Wc"], np.concatenate([params["Wg"][3:], params["Wg"][:3]]).T)
    assert co["bf"].shape == (4, 1)
    ka = to_user(bind(lstm_compare.handrolled.karpathy_lstm).layout, params)
    np.testing.assert_array_equal(ka["WLSTM"][0, 4:8], params["bf"])  # row 0 is the bias


def test_a_divergence_names_the_users_own_element():
    bug = next(b for b in CONVENTION_CATALOG if b.name == "cs231n_forget_derivative_missing_prev_c")
    report = run(bug.module(), Config(references=("torch",), modes=("isolated",)))
    finding = report.findings[0]
    row, col = finding.worst_index  # internal dWf[row, col]: the x rows of Wx, the f block (second of i, f, o, g)
    assert finding.tensor == "dWf" and row < 3
    assert finding.user_tensor == f"dWx[{row}, {5 + col}] (f block)"
    assert f"(yours: dWx[{row}, {5 + col}] (f block))" in finding.message


def test_whole_sequence_code_without_c0_runs_every_mode_from_a_zero_cell_state():
    report = run(lstm_compare.handrolled.cs231n_lstm, Config(references=("jax",)))
    assert any("c0 = 0 in every mode" in note for note in report.notes)


def test_forcing_a_convention_the_file_does_not_follow_is_one_clear_sentence():
    with pytest.raises(UsageError, match=r"has no function lstm_step_forward\(x, prev_h, prev_c, Wx, Wh, b\)"):
        bind(lstm_compare.handrolled.question_lstm, "cs231n")
    with pytest.raises(UsageError, match="unknown convention 'keras'"):
        bind(lstm_compare.handrolled.question_lstm, "keras")


OBJECT_CACHE = '''
from dataclasses import dataclass

import inspect

import numpy as np

from lstm_compare.handrolled.question_lstm import dlstm as _dlstm, lstm as _lstm


@dataclass
class Cache:
    parts: tuple


def lstm(params, x, h, c):
    y, h, c, cache = _lstm(params, x, h, c)
    return y, h, c, Cache(cache)


def dlstm(params, dy, dh_next, dc_next, cache):
    return _dlstm(params, dy, dh_next, dc_next, cache.parts)
'''


@pytest.mark.parametrize("gate_bug", [False, True])
def test_a_question_file_whose_cache_is_an_object_runs_every_mode_and_its_gates_are_observed(tmp_path, gate_bug):
    source = OBJECT_CACHE
    if gate_bug:  # the output gate through tanh, in the module the file wraps
        (tmp_path / "buggy_seed.py").write_text(inspect.getsource(lstm_compare.handrolled.question_lstm).replace(
            "np.tanh(g_pre), sigmoid(o_pre)", "np.tanh(g_pre), np.tanh(o_pre)"))
        source = source.replace("from lstm_compare.handrolled.question_lstm import", "from buggy_seed import")
    path = tmp_path / "object_cache.py"
    path.write_text(source)
    report = run(path, Config(references=REFERENCES, modes=("isolated", "chained")))
    if not gate_bug:
        assert report.findings == () and {"f", "i", "g", "o"} <= {d.tensor for d in report.diffs}
    else:
        assert {(f.phase, f.step, f.tensor) for f in report.findings} == {("forward", 0, "o")}


@pytest.mark.parametrize("convention", ["cs231n", "coursera", "karpathy"])
def test_gradcheck_drives_every_convention_with_the_harness_loss_on_the_parameters_it_differentiates(convention):
    from lstm_compare.modes.gradcheck import gradcheck

    result = gradcheck(MODULES[convention], ProblemSpec(steps=5))
    assert result.passed and [p.name for p in result.parameters] == ["Wf", "Wi", "Wg", "Wo", "bf", "bi", "bg", "bo"]
    bug = next(b for b in CONVENTION_CATALOG if b.name == f"{convention}_candidate_sigmoid")
    failed = gradcheck(bug.module(), ProblemSpec(steps=5))
    assert not failed.passed and {p.name for p in failed.parameters if not p.passed} >= {"Wg", "bg"}
