"""The command line survives the user's code (issue 9: items 11, 11b, 16, 26): ``os._exit``, a crash, a call stuck
where no signal reaches it, a thread that never ends, and Ctrl-C, each through a real ``lstm-compare`` process.

Each case runs ``python -m lstm_compare report`` in a subprocess with a bounded timeout, on a tiny problem against the
finite-difference reference (NumPy only: no framework to import, well under a second).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import write_impl

TINY = ("--reference", "numeric", "--steps", "2", "--hidden", "2", "--inputs", "1")
DLSTM_FIRST_LINE = "    xh, f_pre, f, i_pre, i, g_pre, g, o_pre, o, c, c_tanh, c_prev, h = cache\n"


def tool(tmp_path, *args):
    """Start ``lstm-compare report`` in tmp_path, in a session of its own (so that it can be sent Ctrl-C)."""
    return subprocess.Popen([sys.executable, "-m", "lstm_compare", "report", *map(str, args)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(process, timeout=60):
    """(exit code, stdout, stderr, seconds it took), killing the whole session if it overruns ``timeout``."""
    start = time.monotonic()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"lstm-compare did not end within {timeout} s") from None
    return process.returncode, out, err, time.monotonic() - start


def in_dlstm(tmp_path, name, code):
    return write_impl(tmp_path, name, (DLSTM_FIRST_LINE, code + DLSTM_FIRST_LINE))


def test_os_exit_in_user_code_is_one_line_naming_where_and_exit_1_with_no_reports(tmp_path):
    path = in_dlstm(tmp_path, "exits", "    import os\n    os._exit(5)\n")
    code, out, err, _ = finish(tool(tmp_path, "--impl", path, *TINY))
    assert (code, err) == (1, "lstm-compare: the run ended abruptly inside dlstm at backward step 1 (exit status 5, "
                              "as from os._exit); no reports written.\n")
    assert not (tmp_path / "reports").exists()


def test_a_crash_in_user_code_is_one_line_naming_the_signal_and_exit_1(tmp_path):
    path = in_dlstm(tmp_path, "crashes", "    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n")
    code, _, err, _ = finish(tool(tmp_path, "--impl", path, *TINY))
    assert (code, err) == (1, "lstm-compare: the run ended abruptly inside dlstm at backward step 1 (killed by "
                              "SIGSEGV); no reports written.\n")


def test_a_call_stuck_where_no_signal_reaches_it_is_stopped_after_the_limit_with_one_line(tmp_path):
    """SIGALRM blocked, as in compiled code that never returns to Python: the parent stops it, GRACE later."""
    stuck = "    import signal\n    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n    while True:\n" \
            "        pass\n"
    path = in_dlstm(tmp_path, "stuck", stuck)
    code, out, err, seconds = finish(tool(tmp_path, "--impl", path, *TINY, "--timeout", "0.5"))
    assert (code, err) == (1, "lstm-compare: dlstm at backward step 1 timed out after 0.5 s and could not be "
                              "interrupted (stuck in compiled code, or catching every exception); stopped it, no "
                              "reports written.\n")
    assert seconds < 30 and not (tmp_path / "reports").exists()


def test_an_endless_python_loop_is_a_finding_per_mode_and_the_reports_are_written(tmp_path):
    path = in_dlstm(tmp_path, "endless", "    while True:\n        pass\n")
    code, out, err, _ = finish(tool(tmp_path, "--impl", path, *TINY, "--timeout", "0.3"))
    assert (code, err) == (1, "")
    assert "numeric, chained: chained backward step 1: dlstm timed out after 0.3 s." in out
    assert (tmp_path / "reports" / "first_divergence.csv").is_file()


def test_a_thread_the_user_code_leaves_running_does_not_keep_the_tool_alive(tmp_path):
    path = in_dlstm(tmp_path, "threads", "    import threading, time\n"
                                         "    threading.Thread(target=time.sleep, args=(600,)).start()\n")
    code, out, err, seconds = finish(tool(tmp_path, "--impl", path, *TINY), timeout=120)
    assert (code, err) == (0, "") and "No divergence" in out
    assert seconds < 60


INTERRUPTS = {"ctrl_c_to_the_process_group": (signal.SIGINT, 130, "lstm-compare: interrupted.\n"),
              "sigint_to_the_tool_alone": (signal.SIGINT, 130, "lstm-compare: interrupted.\n"),
              "sigterm_to_the_tool_alone": (signal.SIGTERM, 143, "lstm-compare: interrupted (SIGTERM).\n")}


@pytest.mark.parametrize("case", INTERRUPTS)
def test_an_interruption_is_one_line_and_leaves_earlier_reports_and_no_temporary_files(tmp_path, case):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "divergence.csv").write_text("an earlier report\n")
    entered = tmp_path / "entered"
    path = in_dlstm(tmp_path, "slow", f"    import pathlib, time\n    pathlib.Path({str(entered)!r}).touch()\n"
                                      "    time.sleep(60)\n")
    process = tool(tmp_path, "--impl", path, *TINY)
    deadline = time.monotonic() + 60
    while not entered.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert entered.exists()
    signum, expected_code, expected_err = INTERRUPTS[case]
    (os.killpg if "group" in case else os.kill)(process.pid, signum)
    code, out, err, seconds = finish(process, timeout=30)
    assert (code, err) == (expected_code, expected_err)
    assert sorted(p.name for p in reports.iterdir()) == ["divergence.csv"]
    assert (reports / "divergence.csv").read_text() == "an earlier report\n"
    assert seconds < 10


def test_output_closed_early_stops_quietly_with_141_and_the_reports_written(tmp_path):
    """`lstm-compare report | head -0`: the reader is gone before the summary; no traceback, no 'ended abruptly'."""
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails with EPIPE
    process = subprocess.Popen([sys.executable, "-m", "lstm_compare", "report", *TINY], cwd=tmp_path, stdout=write,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(write)
    code, _, err, _ = finish(process)
    assert (code, err) == (141, "")
    assert (tmp_path / "reports" / "divergence.csv").is_file()  # written before the summary was printed
