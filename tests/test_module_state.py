"""Files that keep state outside their cache, or bound their pre-activations (issue 20, items 2 and 4): the harness's
own extra calls (the saturation probes) and its several runs leave each run's state as the file's own loop would."""

import inspect

import lstm_compare.handrolled.cs231n_lstm
from lstm_compare import Config, ProblemSpec, run
from helpers import write_edited

CS231N = inspect.getsource(lstm_compare.handrolled.cs231n_lstm)
SMALL = ProblemSpec(steps=6, hidden=4, inputs=3, batch=2)
CLIP = ("    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)\n",
        "    a = np.clip(x @ Wx + prev_h @ Wh + b, -8, 8)  # (N, 4H)\n")


def test_a_correct_file_that_clips_its_pre_activations_matches_and_its_gates_are_not_judged(tmp_path):
    report = run(write_edited(tmp_path, "clipped", CS231N, CLIP), Config(spec=SMALL))
    assert report.findings == () and report.failures == ()
    assert any("read off with the other gates saturated do not give back its own c and h" in n for n in report.notes)
    assert not {"f", "i", "g", "o"} & {d.tensor for d in report.diffs if d.phase == "forward"}


def test_a_wrong_gate_behind_a_clip_is_still_located_at_forward_step_0(tmp_path):
    wrong = ("    g = np.tanh(a[:, 3 * H:])\n", "    g = sigmoid(a[:, 3 * H:])\n")
    report = run(write_edited(tmp_path, "clipped_bug", CS231N, CLIP, wrong), Config(spec=SMALL))
    assert {(f.mode, f.phase, f.step) for f in report.findings} >= {("isolated", "forward", 0)}
    assert all(f.tensor in ("g", "c") for f in report.findings if f.mode == "isolated")


STACK_FILE = '''
import numpy as np

LSTM_COMPARE = {"step_forward": "step(x, h, c, W) -> h, c", "step_backward": "step_back(dh, dc, W) -> dx, dh, dc, dW",
                "layout": {"W": "x h 1 | i f g o"}}
_STACK = []
CALLS = 0


def sig(z):
    return 1 / (1 + np.exp(-z))


def step(x, h, c, W):
    global CALLS
    CALLS += 1
    H = h.shape[1]
    z = np.concatenate([x, h, np.ones((x.shape[0], 1), x.dtype)], axis=1)
    a = z @ W
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    c_next = f * c + i * g
    _STACK.append((z, c, c_next, i, f, g, o))
    return o * np.tanh(c_next), c_next


def step_back(dh, dc, W):
    z, c, c_next, i, f, g, o = _STACK.pop()
    H = c.shape[1]
    t = np.tanh(c_next)
    dc = dc + dh * o * (1 - t**2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2), dh * t * o * (1 - o)],
                        axis=1)
    dz = da @ W.T
    X = z.shape[1] - H - 1
    return dz[:, :X], dz[:, X:X + H], dc * f, z.T @ da
'''


def test_a_file_that_keeps_its_forward_on_a_module_level_stack_matches_in_every_run(tmp_path):
    path = tmp_path / "stack_lstm.py"
    path.write_text(STACK_FILE)
    report = run(path, Config(spec=SMALL))
    assert report.findings == () and report.failures == ()
    assert {(d.reference, d.mode) for d in report.diffs if d.phase == "backward"} == {
        (r, m) for r in ("torch", "jax") for m in ("isolated", "chained")}
