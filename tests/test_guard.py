"""The user's code as hostile input, in-process (issue 9: items 1, 2, 5, 6, 9, 11, 16, 17, 20): every argument is
a private copy of the same type, every returned array a snapshot, each function called once per measurement,
process state restored after each call, a per-call time limit, and one line on stderr for what cannot run.

The implementations are ``lstm_compare/handrolled/question_lstm.py`` with a line or two changed, written to ``tmp_path``; the
comparisons are small (T=4, H=3, X=2) and against torch alone, which is all these behaviours need.
"""

import collections
import dataclasses
import os
import sys
import types

import numpy as np
import pytest

import lstm_compare
from lstm_compare import handrolled
from lstm_compare import Config, ProblemSpec
from lstm_compare.errors import ImplementationRaised, UsageError
from lstm_compare.modes.gradcheck import gradcheck
from lstm_compare.lstm.problem import make_problem
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.drive import forward
from lstm_compare.usercode.guard import call, import_file, private_copy, read_only
from helpers import report_cli, write_impl
from lstm_compare.lstm.model import Model

SMALL = ProblemSpec(steps=4, hidden=3, inputs=2)
TORCH = Config(spec=SMALL, references=("torch",))
LSTM_FIRST_LINE = "    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)\n"
LSTM_RETURN = "    return y, h, c, cache\n"
DLSTM_FIRST_LINE = "    xh, f_pre, f, i_pre, i, g_pre, g, o_pre, o, c, c_tanh, c_prev, h = cache\n"
DLSTM_RETURN = "    return dparams, dxh[..., -H:], dc * f\n"


def line_of(path, text):
    """The 1-based number of the only line of ``path`` that contains ``text``."""
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


def exceptions(report):
    return [f.message for f in report.failures]


# --- 1. caches of any structure reach dlstm as they were built -------------------------------------------------

def test_namedtuple_cache_reaches_dlstm_as_the_same_namedtuple_in_every_mode_and_in_gradcheck(tmp_path):
    path = write_impl(
        tmp_path, "namedtuple_cache",
        ("import numpy as np\n", "import collections\nimport numpy as np\n"),
        (LSTM_RETURN, "    return y, h, c, Cache(*cache)\n"),
        (DLSTM_FIRST_LINE, "    assert type(cache) is Cache, type(cache)\n    xh, c_prev, h = cache.xh, cache.c_prev, "
                           "cache.h\n    f_pre, f, i, g, o, c_tanh = cache.f_pre, cache.f, cache.i, cache.g, cache.o, "
                           "cache.c_tanh\n"),
        ("def sigmoid(", "Cache = collections.namedtuple('Cache', CACHE_FIELDS)\n\n\ndef sigmoid("))
    report = lstm_compare.run(path, TORCH)
    assert exceptions(report) == [] and report.findings == ()
    assert {d.mode for d in report.diffs} == {"isolated", "chained", "sequence"}
    assert gradcheck(path, SMALL).passed


Point = collections.namedtuple("Point", "x y")


@dataclasses.dataclass
class Record:
    gates: np.ndarray
    scale: float


@dataclasses.dataclass(frozen=True)
class FrozenRecord:
    gates: np.ndarray


class Holder:
    def __init__(self, gates):
        self.gates = gates


CACHES = {
    "namedtuple": lambda a: Point(a, a + 1),
    "nested": lambda a: (a, [a + 1, {"deep": (a + 2,)}]),
    "dict": lambda a: {"xh": a, "c": a + 1},
    "dataclass": lambda a: Record(a, 2.0),
    "frozen_dataclass": lambda a: FrozenRecord(a),
    "object": lambda a: Holder(a),
}


def arrays_in(value):
    """Every ndarray inside ``value``, in a fixed order."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        return [a for item in value.values() for a in arrays_in(item)]
    if isinstance(value, (list, tuple)):
        return [a for item in value for a in arrays_in(item)]
    if hasattr(value, "__dict__"):
        return arrays_in(vars(value))
    return []


@pytest.mark.parametrize("kind", CACHES)
def test_private_copy_keeps_the_type_and_values_of_every_cache_structure_and_shares_no_memory(kind):
    original = CACHES[kind](np.arange(3.0))
    copied = private_copy(original)
    assert type(copied) is type(original)
    pairs = list(zip(arrays_in(copied), arrays_in(original), strict=True))
    assert pairs
    for mine, theirs in pairs:
        np.testing.assert_array_equal(mine, theirs)
        assert not np.shares_memory(mine, theirs)
        mine += 100  # the user's code may write to its copy ...
    assert arrays_in(original)[0].tolist() == [0.0, 1.0, 2.0]  # ... and the original does not change


@pytest.mark.parametrize("kind", CACHES)
def test_every_cache_structure_reaches_the_users_function_through_call_with_its_type(kind):
    cache = CACHES[kind](np.arange(3.0))
    seen = []
    impl = types.SimpleNamespace(source=None, dlstm=lambda params, dy, dh, dc, c: seen.append(c) or "done")
    assert call(impl, "dlstm", ({}, 0.0, 0.0, 0.0, cache), "backward", 0) == "done"
    (received,) = seen
    assert type(received) is type(cache) and received is not cache
    assert [a.tolist() for a in arrays_in(received)] == [a.tolist() for a in arrays_in(cache)]


def test_an_uncopyable_cache_is_passed_as_it_is_instead_of_failing():
    import threading

    cache = (np.ones(2), threading.Lock())
    assert private_copy(cache)[1] is cache[1]


# --- 2. returned arrays are snapshots ---------------------------------------------------------------------------

REUSED_BUFFERS = (
    ("def sigmoid(", "BUFFERS = {}\n\n\ndef reused(name, value):\n    buffer = BUFFERS.setdefault((name, "
                        "value.shape, value.dtype.str), np.empty_like(value))\n    buffer[...] = value\n"
                        "    return buffer\n\n\ndef sigmoid("),
    (LSTM_RETURN, "    return reused('y', y), reused('h', h), reused('c', c), cache\n"),
    (DLSTM_RETURN, "    dparams = {name: reused(name, value) for name, value in dparams.items()}\n"
                   "    return dparams, reused('dh', dxh[..., -H:]), reused('dc', dc * f)\n"),
)


def test_code_that_returns_one_reused_buffer_for_every_step_matches_where_the_harness_runs_the_loop(tmp_path):
    """Isolated and chained modes (the file's own lstm_loss keeps the aliases, which sequence mode rightly finds)."""
    path = write_impl(tmp_path, "reused_buffers", *REUSED_BUFFERS)
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch", "jax"), modes=("isolated", "chained")))
    assert exceptions(report) == [] and report.findings == ()


# --- 5 and 6. one call per measurement; the shared parameters cannot be changed -------------------------------

def test_an_exception_mentioning_read_only_is_a_finding_and_the_function_is_called_once(tmp_path):
    calls = tmp_path / "calls.txt"  # counted outside the module: each run has its own module-level state
    path = write_impl(tmp_path, "read_only_message",
                      (DLSTM_FIRST_LINE, f"    with open({str(calls)!r}, 'a') as f:\n        f.write('1')\n"
                                         f"    raise ValueError('output array is read-only')\n"))
    report = lstm_compare.run(path, TORCH)
    raised = (f"ValueError: output array is read-only (line {line_of(path, 'raise ValueError')} of "
              f"read_only_message.py); if that is a parameter: they are read-only (every call shares them), copy "
              f"one before changing it")
    assert exceptions(report) == [f"isolated backward step 3: dlstm raised {raised}.",
                                  f"chained backward step 3: dlstm raised {raised}.",
                                  f"sequence backward (whole sequence): dlstm_loss raised {raised}."]
    assert calls.read_text() == "111"  # isolated, chained, and through dlstm_loss: never a second try


def test_the_parameters_are_shared_and_no_one_can_write_them_not_even_after_flags_writeable(tmp_path):
    """Every call shares the parameters (a cache that keeps them costs nothing), so none can be writable: code that
    tries is told so at its step, and what the harness and later steps see is unchanged."""
    vandal = ("    for value in params.values():\n        value.flags.writeable = True\n        value *= 3\n")
    path = write_impl(tmp_path, "vandal", (LSTM_RETURN, vandal + LSTM_RETURN))
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch",), modes=("isolated",)))
    line = line_of(path, "value.flags.writeable = True")
    assert exceptions(report) == [f"isolated forward step 0: lstm raised ValueError: cannot set WRITEABLE flag to "
                                  f"True of this array (line {line} of vandal.py); if that is a parameter: they are "
                                  f"read-only (every call shares them), copy one before changing it."]


def test_a_cache_that_keeps_the_parameters_holds_the_shared_ones_not_a_copy_per_step(tmp_path):
    fields = '"xh", "f_pre", "f", "i_pre", "i", "g_pre", "g", "o_pre", "o", "c", "c_tanh", "c_prev", "h"'
    path = write_impl(tmp_path, "keeper", (f"CACHE_FIELDS = ({fields})", f'CACHE_FIELDS = ({fields}, "params")'),
                      ("c_tanh, c_prev, h)\n", "c_tanh, c_prev, h, params)\n"),
                      ("c_tanh, c_prev, h = cache\n", "c_tanh, c_prev, h, _ = cache\n"))
    binding = bind(path)
    problem = make_problem(SMALL)
    problem = dataclasses.replace(problem, params={k: read_only(v) for k, v in problem.params.items()})
    run_ = forward(binding, problem)
    assert run_.failure is None and len(run_.caches) == SMALL.steps
    assert all(cache[-1][name] is problem.params[name] for cache in run_.caches for name in problem.params)
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch",), modes=("isolated", "chained")))
    assert exceptions(report) == [] and report.findings == ()


def test_code_that_writes_to_its_arguments_in_place_is_given_writable_copies(tmp_path):
    path = write_impl(tmp_path, "in_place",
                      (LSTM_FIRST_LINE, "    h_prev += 0.0\n    c_prev += 0.0\n" + LSTM_FIRST_LINE),
                      (DLSTM_FIRST_LINE, "    dc_next += 0.0\n    dy *= 1.0\n" + DLSTM_FIRST_LINE))
    report = lstm_compare.run(path, TORCH)
    assert exceptions(report) == [] and report.findings == ()


# --- 9. process state is restored after each call ---------------------------------------------------------------

def test_chdir_stdout_and_numpy_error_handling_changed_by_user_code_are_restored_after_each_call(tmp_path,
                                                                                                 monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    meddle = (f"    import io, os, sys\n    os.chdir({str(elsewhere)!r})\n    np.seterr(all='raise')\n"
              "    sys.stdout = io.StringIO()\n")
    path = write_impl(tmp_path, "meddles", (LSTM_FIRST_LINE, meddle + LSTM_FIRST_LINE))
    stdout, errors = sys.stdout, np.geterr()
    report = lstm_compare.run(path, TORCH)
    assert exceptions(report) == [] and report.findings == ()
    assert (os.getcwd(), sys.stdout, np.geterr()) == (str(tmp_path), stdout, errors)


def test_reports_go_to_the_out_folder_of_the_start_even_when_user_code_changes_directory(tmp_path, capsys,
                                                                                        monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path)
    path = write_impl(tmp_path, "moves", (LSTM_FIRST_LINE, f"    import os\n    os.chdir({str(elsewhere)!r})\n"
                                                           + LSTM_FIRST_LINE))
    code, _, err = report_cli(capsys, "--impl", path, "--reference", "torch", "--steps", "3", "--out", "reports")
    assert (code, err) == (0, "")
    assert (tmp_path / "reports" / "divergence.csv").is_file() and not (elsewhere / "reports").exists()


# --- 11. the time limit ---------------------------------------------------------------------------------------

ENDLESS_AT_LAST_STEP = ("    if np.all(dh_next == 0):\n        while True:\n            try:\n"
                        "                sum(range(1000))\n            except Exception:\n                pass\n")


def test_a_call_past_the_time_limit_is_a_finding_timed_out_at_its_mode_phase_and_step(tmp_path):
    """dlstm loops forever (catching every Exception) at the last step, whose dh_next is zero in every mode."""
    path = write_impl(tmp_path, "endless", (DLSTM_FIRST_LINE, ENDLESS_AT_LAST_STEP + DLSTM_FIRST_LINE))
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch",), modes=("isolated", "chained"), timeout=0.3))
    assert exceptions(report) == ["isolated backward step 3: dlstm timed out after 0.3 s.",
                                  "chained backward step 3: dlstm timed out after 0.3 s."]
    assert [(f.mode, f.phase, f.step, f.tensor) for f in report.findings] == [
        ("isolated", "backward", 3, "exception"), ("chained", "backward", 3, "exception")]


def test_timeout_flag_limits_each_call_and_the_run_exits_1(tmp_path, capsys):
    path = write_impl(tmp_path, "endless", (DLSTM_FIRST_LINE, ENDLESS_AT_LAST_STEP + DLSTM_FIRST_LINE))
    code, out, err = report_cli(capsys, "--impl", path, "--reference", "torch", "--steps", "3", "--timeout", "0.2",
                                "--out", tmp_path / "out")
    assert (code, err) == (1, "")
    assert "isolated backward step 2: dlstm timed out after 0.2 s." in out


def test_module_level_code_past_the_time_limit_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "hangs_on_import.py"
    path.write_text("while True:\n    pass\n")
    code, out, err = report_cli(capsys, "--impl", path, "--timeout", "0.2", "--out", tmp_path / "out")
    assert (code, out) == (2, "")
    assert err == f"lstm-compare: error: {path} does not import: its module-level code did not finish within 0.2 s.\n"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_one_line_and_exit_2(tmp_path, capsys, value):
    code, out, err = report_cli(capsys, "--timeout", value, "--out", tmp_path / "out")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "--timeout" in err and "seconds" in err


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "60"])
def test_a_config_timeout_that_is_not_a_positive_number_is_a_usage_error(value):
    with pytest.raises(UsageError, match="positive, finite number of seconds"):
        lstm_compare.run(handrolled, Config(spec=SMALL, timeout=value))


def test_the_time_limit_is_not_applied_off_the_main_thread_and_the_call_still_works():
    import threading

    impl = types.SimpleNamespace(source=None, lstm=lambda *args: "done")
    results = []
    worker = threading.Thread(target=lambda: results.append(call(impl, "lstm", ({}, 1, 2, 3), "forward", 0)))
    worker.start()
    worker.join()
    assert results == ["done"]


def test_the_time_limit_steps_aside_while_another_real_time_timer_runs_and_leaves_it_running():
    """pytest-timeout's signal method, say: its timer and handler must survive, and only it may fire."""
    import signal
    import time

    from lstm_compare.usercode.timelimit import time_limit

    fired = []
    impl = types.SimpleNamespace(source=None, lstm=lambda *args: time.sleep(0.2) or "done")
    def outer(signum, frame):
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, outer)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        with time_limit(0.05):
            result = call(impl, "lstm", ({}, 1, 2, 3), "forward", 0)
        remaining, handler = signal.getitimer(signal.ITIMER_REAL)[0], signal.getsignal(signal.SIGALRM)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert (result, fired) == ("done", []) and 4 < remaining <= 5 and handler is outer


def test_after_a_call_no_timer_is_left_running_and_the_previous_alarm_handler_is_back():
    import signal

    previous = signal.getsignal(signal.SIGALRM)
    impl = types.SimpleNamespace(source=None, lstm=lambda *args: signal.getitimer(signal.ITIMER_REAL)[0])
    remaining_inside = call(impl, "lstm", ({}, 1, 2, 3), "forward", 0)
    assert 59 < remaining_inside <= 60  # the default limit was running during the call
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) is previous


# --- 16. Ctrl-C and KeyboardInterrupt ---------------------------------------------------------------------------

def test_keyboard_interrupt_raised_in_user_code_is_one_line_exit_130_and_earlier_reports_stay(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "divergence.csv").write_text("an earlier report\n")
    path = write_impl(tmp_path, "interrupts", (DLSTM_FIRST_LINE, "    raise KeyboardInterrupt\n"))
    code, out, err = report_cli(capsys, "--impl", path, "--out", out_dir)
    assert (code, out, err) == (130, "", "lstm-compare: interrupted.\n")
    assert sorted(p.name for p in out_dir.iterdir()) == ["divergence.csv"]
    assert (out_dir / "divergence.csv").read_text() == "an earlier report\n"


# --- 17 and 20. messages that cannot be printed, messages of several lines ----------------------------------------

def test_an_exception_whose_str_raises_is_reported_by_its_type_name(tmp_path, capsys):
    path = write_impl(tmp_path, "bad_str",
                      ("def sigmoid(", "class Unprintable(Exception):\n    def __str__(self):\n"
                                          "        raise RuntimeError('no text')\n\n\ndef sigmoid("),
                      (DLSTM_FIRST_LINE, "    raise Unprintable()\n"))
    code, out, err = report_cli(capsys, "--impl", path, "--reference", "torch", "--steps", "3",
                                "--out", tmp_path / "out")
    assert (code, err) == (1, "")
    assert (f"isolated backward step 2: dlstm raised Unprintable (its message cannot be shown: its __str__ raised) "
            f"(line {line_of(path, 'raise Unprintable')} of bad_str.py).") in out


def test_a_multi_line_import_error_is_one_line_on_stderr(tmp_path, capsys):
    path = tmp_path / "multi_line.py"
    path.write_text("raise ImportError('first line\\nsecond line\\n\\nthird line')\n")
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "out")
    assert (code, out) == (2, "")
    assert err == (f"lstm-compare: error: {path} does not import: ImportError: first line second line third line "
                   "(line 1 of multi_line.py).\n")


def test_an_impl_path_with_a_newline_is_one_line_on_stderr(tmp_path, capsys):
    path = tmp_path / "two\nlines.py"
    code, out, err = report_cli(capsys, "--impl", path, "--out", tmp_path / "out")
    assert (code, out) == (2, "")
    assert err == f"lstm-compare: error: {tmp_path}/two\\nlines.py does not exist or is not a file.\n"


def test_a_user_exception_becomes_a_finding_at_its_phase_and_step_through_call():
    def lstm(*args):
        raise SystemExit("bye")

    with pytest.raises(ImplementationRaised) as raised:
        call(types.SimpleNamespace(source=None, lstm=lstm), "lstm", ({}, 1, 2, 3), "forward", 7)
    assert (raised.value.phase, raised.value.step, raised.value.message) == ("forward", 7,
                                                                            "lstm raised SystemExit: bye.")


CAUGHT_ONCE_AT_LAST_STEP = ("    if np.all(dh_next == 0):\n        import time\n        try:\n            time.sleep(5)\n"
                            "        except BaseException:\n            pass\n")


def test_a_call_that_catches_the_timeout_and_returns_late_is_still_timed_out(tmp_path):
    path = write_impl(tmp_path, "swallows", (DLSTM_FIRST_LINE, CAUGHT_ONCE_AT_LAST_STEP + DLSTM_FIRST_LINE))
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch",), modes=("isolated",), timeout=0.3))
    assert exceptions(report) == ["isolated backward step 3: dlstm timed out after 0.3 s (it caught the "
                                  "interruption and ran on)."]


def test_a_file_that_turns_torch_gradients_off_does_not_change_the_references(tmp_path):
    path = write_impl(tmp_path, "nograd", ("import numpy as np\n", "import numpy as np\nimport torch\n"
                                                                    "torch.set_grad_enabled(False)\n"))
    import torch

    try:
        assert not lstm_compare.run(path, Config(spec=SMALL)).diverged
        assert not lstm_compare.run(path, Config(spec=ProblemSpec(steps=3, model=Model(layers=2)))).diverged
    finally:
        torch.set_grad_enabled(True)


def test_float32_results_in_a_float64_run_get_a_note_on_their_precision(tmp_path):
    path = write_impl(tmp_path, "single", ("    xh = np.concatenate([x, h_prev], axis=-1)  # ([B,] X+H)",
                                           "    xh = np.concatenate([x, h_prev], axis=-1).astype(np.float32)"))
    report = lstm_compare.run(path, Config(spec=SMALL, references=("torch",), modes=("isolated",)))
    assert any("computes in float32 on float64 inputs" in note for note in report.notes)
