"""Correct code is never reported as diverging because of how the harness observes it, and mistakes in how a file
is written are told in one sentence: the cases a hostile review of the convention layer found."""

import inspect

import pytest

import lstm_compare.handrolled.coursera_lstm
import lstm_compare.handrolled.cs231n_lstm
import lstm_compare.handrolled.karpathy_lstm
import lstm_compare.handrolled.question_lstm
from lstm_compare import Config, ProblemSpec, UsageError, run
from lstm_compare.frontends.cli import main
from lstm_compare.usercode.conventions import bind
from helpers import write_edited as write

CS231N = inspect.getsource(lstm_compare.handrolled.cs231n_lstm)
SIGMOID = ("    e = np.exp(-np.abs(z))\n    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))\n")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "edit"), [
    ("sigmoid_as_exponential_ratio", (SIGMOID, "    return np.exp(z) / (1 + np.exp(z))\n")),
    ("tanh_as_exponential_ratio", ("    g = np.tanh(a[:, 3 * H:])",
                                   "    g = (np.exp(2 * a[:, 3 * H:]) - 1) / (np.exp(2 * a[:, 3 * H:]) + 1)")),
    ("pre_activations_clipped", ("    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)",
                                 "    a = np.clip(x @ Wx + prev_h @ Wh + b, -15, 15)  # (N, 4H)")),
])
def test_correct_cs231n_code_matches_whatever_its_gates_do_under_the_saturation_probes(tmp_path, name, edit, dtype):
    path = write(tmp_path, name, CS231N, edit)
    report = run(path, Config(spec=ProblemSpec(dtype=dtype), references=("torch",), modes=("isolated", "chained")))
    assert report.findings == (), [f.message for f in report.findings]


def test_a_probe_that_breaks_the_users_code_is_a_note_not_a_divergence(tmp_path):
    path = write(tmp_path, "guarded", CS231N,
                 (SIGMOID, "    assert np.all(np.abs(z) < 20), 'pre-activation out of range'\n" + SIGMOID))
    report = run(path, Config(references=("torch",), modes=("isolated",)))
    assert report.findings == ()
    note = next(n for n in report.notes if "could not be read off" in n)
    assert "AssertionError: pre-activation out of range" in note and "c and h locate forward bugs" in note


def test_a_coursera_cache_in_another_order_falls_back_to_observing_the_gates(tmp_path):
    source = inspect.getsource(lstm_compare.handrolled.coursera_lstm)
    path = write(tmp_path, "swapped", source,
                 ("cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)",
                  "cache = (a_next, c_next, a_prev, c_prev, it, ft, cct, ot, xt, parameters)"),
                 ("a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache",
                  "a_next, c_next, a_prev, c_prev, it, ft, cct, ot, xt, parameters = cache"))
    assert run(path, Config(references=("torch",))).findings == ()


def test_a_file_with_the_names_of_two_conventions_says_which_one_was_chosen(tmp_path):
    path = write(tmp_path, "both", CS231N + "\n\ndef lstm(p, x, h, c):\n    raise NotImplementedError\n\n\n"
                                              "def dlstm(p, dy, dh, dc, cache):\n    raise NotImplementedError\n")
    binding = bind(path)
    assert binding.convention == "question"
    assert binding.notes == (f"{path} defines the names of several conventions (question, cs231n); question was "
                             f"chosen: --convention names another.",)
    assert bind(path, "cs231n").convention == "cs231n"


def test_a_forward_that_ignores_the_state_it_is_given_is_told_so(tmp_path):
    source = inspect.getsource(lstm_compare.handrolled.question_lstm)
    path = write(tmp_path, "ignores", source, ("xh = np.concatenate([x, h_prev], axis=-1)",
                                                "xh = np.concatenate([x, np.zeros_like(h_prev)], axis=-1)"))
    finding = run(path, Config(references=("torch",), modes=("isolated",))).findings[0]
    assert (finding.phase, finding.step) == ("forward", 0)
    assert "the state the step is given" in finding.message


def test_karpathy_methods_that_are_not_static_are_one_sentence(tmp_path):
    source = inspect.getsource(lstm_compare.handrolled.karpathy_lstm)
    path = write(tmp_path, "instance", source.replace("    @staticmethod\n    def forward(", "    def forward(self, "))
    with pytest.raises(UsageError, match=r"LSTM.forward cannot be called as .* \(it must be a static method\)"):
        bind(path)


def test_definitions_only_loading_keeps_cache_fields_built_by_a_call(tmp_path):
    source = inspect.getsource(lstm_compare.handrolled.question_lstm) + "\nassert False, 'the script part fails'\n"
    path = write(tmp_path, "fields", source, ("CACHE_FIELDS = (", "CACHE_FIELDS = tuple(("),
                 ('"c_prev", "h")\n', '"c_prev", "h"))\n'))
    binding = bind(path)
    assert binding.cache_fields[0] == "xh" and any("only its definitions" in n for n in binding.notes)


def test_a_bias_gradient_kept_two_dimensional_is_a_shape_error_not_per_example_gradients(tmp_path):
    path = write(tmp_path, "keepdims", CS231N, ("db = da.sum(axis=0)", "db = da.sum(axis=0, keepdims=True)"))
    with pytest.raises(UsageError, match=r"db returned by lstm_step_backward at step 11 has shape \(1, 20\); "):
        run(path, Config(references=("torch",), modes=("isolated",)))


def test_an_abbreviated_flag_is_not_taken_for_another(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gradcheck", "--out", "somewhere"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --out" in capsys.readouterr().err


def test_detect_says_why_it_could_not_run_the_forward_step_in_one_line(tmp_path, capsys):
    path = write(tmp_path, "exits", CS231N,
                 ("    H = prev_h.shape[1]\n", "    H = prev_h.shape[1]\n    raise SystemExit(3)\n"))
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", "--impl", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "detect could not run its forward step: lstm_step_forward raised SystemExit: 3" in err


def test_whole_sequence_code_that_returns_float64_in_a_float32_run_is_noted(tmp_path):
    path = write(tmp_path, "upcast_sequence", CS231N, ("    return np.stack(hs, axis=1), caches",
                                                       "    return np.stack(hs, axis=1).astype(np.float64), caches"))
    report = run(path, Config(spec=ProblemSpec(dtype="float32"), references=("torch",), modes=("sequence",)))
    assert f"{path} computes in float64 on float32 inputs (dh0, dx, h come back float64), so its float32 rounding is " \
           f"not what this run measures." in report.notes
