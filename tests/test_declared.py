"""Declared layouts (``LSTM_COMPARE``): small correct LSTM files in shapes no built-in convention reads match both
references in every mode they allow, a one-line mutation of each is located at its step, gate and tensor, and a
bad declaration is one clear sentence."""

import textwrap

import numpy as np
import pytest

import lstm_compare.handrolled.cs231n_lstm
from lstm_compare import Config, ProblemSpec, UsageError, run
from lstm_compare.usercode.conventions import bind, detect
from lstm_compare.usercode.conventions.layout import Sizes, locate_entry, to_internal, to_user
from lstm_compare.lstm.problem import make_problem
from helpers import report_cli

REFERENCES = ("torch", "jax")

# Column vectors (n, N), one fused W (4H, H+X) acting on [h; x] from the left, blocks i, f, o, g, b (4H, 1); the
# cache is a tuple whose gates the declaration locates; whole-sequence functions on x (X, N, T) from c0 = 0.
COLUMNS = '''
import numpy as np

LSTM_COMPARE = {
    "step_forward": "step(x, h, c, W, b) -> h, c, cache",
    "step_backward": "step_back(dh, dc, cache) -> dx, dh, dc, dW, db",
    "sequence_forward": "run(xs, h, W, b) -> hs, cache",
    "sequence_backward": "run_back(dhs, cache) -> dxs, dh, dW, db",
    "layout": {"W": "h x | i f o g", "b": "1 | i f o g"},
    "vectors": "columns",
    "sequence_axes": "nNT",
    "cache": {"i": 3, "f": 4, "o": 5, "g": 6},
}

def sig(z):
    return 1 / (1 + np.exp(-z))

def step(x, h, c, W, b):
    H = h.shape[0]
    z = np.concatenate([h, x]) # (H+X, N)
    a = W @ z + b  # (4H, N)
    i, f, o, g = sig(a[:H]), sig(a[H:2*H]), sig(a[2*H:3*H]), np.tanh(a[3*H:])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    return h_next, c_next, (z, c, c_next, i, f, o, g, W)

def step_back(dh, dc, cache):
    z, c, c_next, i, f, o, g, W = cache
    H = c.shape[0]
    t = np.tanh(c_next)
    dc = dc + dh * o * (1 - t**2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dh * t * o * (1 - o), dc * i * (1 - g**2)])
    dz = W.T @ da
    return dz[H:], dz[:H], dc * f, da @ z.T, da.sum(axis=1, keepdims=True)

def run(xs, h, W, b):
    c = np.zeros_like(h)
    hs, caches = [], []
    for t in range(xs.shape[2]):
        h, c, cache = step(xs[:, :, t], h, c, W, b)
        hs.append(h)
        caches.append(cache)
    return np.stack(hs, axis=2), caches

def run_back(dhs, caches):
    dh = dc = np.zeros_like(dhs[:, :, 0])
    dW, db = np.zeros_like(caches[0][7]), 0
    dxs = []
    for t in reversed(range(dhs.shape[2])):
        dx, dh, dc, dW_t, db_t = step_back(dhs[:, :, t] + dh, dc, caches[t])
        dW, db = dW + dW_t, db + db_t
        dxs.insert(0, dx)
    return np.stack(dxs, axis=2), dh, dW, db
'''

# A stateful cell (numpy-ml style): forward(x) / backward(dh, dc) on an instance that keeps its state, its
# parameters, a history of its steps and its accumulated gradients in attributes; one W with the bias as its
# last row, blocks g, i, f, o; whole-sequence methods that walk the same history.
STATEFUL = '''
import numpy as np

LSTM_COMPARE = {
    "class": "Cell(X, H)",
    "step_forward": "forward(x) -> h",
    "step_backward": "backward(dh, dc) -> dx",
    "sequence_forward": "run(xs) -> hs",
    "sequence_backward": "run_back(dhs) -> dxs",
    "layout": {"W": "x h 1 | g i f o"},
    "attributes": {"h_prev": "h", "c_prev": "c", "c_next": "c", "W": "params.W", "dW": "grads.W",
                   "dh_prev": "dh_prev", "dc_prev": "dc_prev"},
}

def sig(z):
    return 1 / (1 + np.exp(-z))

class Cell:
    def __init__(self, n_in, n_hidden):
        self.H, self.history = n_hidden, []
        self.h = self.c = np.zeros((1, n_hidden))
        self.params = {"W": np.zeros((n_in + n_hidden + 1, 4 * n_hidden))}
        self.grads = {"W": np.zeros_like(self.params["W"])}

    def forward(self, x):
        H = self.H
        z = np.concatenate([x, self.h, np.ones((len(x), 1), x.dtype)], axis=1)
        a = z @ self.params["W"]
        g, i, f, o = np.tanh(a[:, :H]), sig(a[:, H:2*H]), sig(a[:, 2*H:3*H]), sig(a[:, 3*H:])
        c_prev, self.c = self.c, f * self.c + i * g
        self.h = o * np.tanh(self.c)
        self.history.append((z, c_prev, self.c, g, i, f, o))
        return self.h

    def backward(self, dh, dc):
        z, c_prev, c, g, i, f, o = self.history.pop()
        t = np.tanh(c)
        dc = dc + dh * o * (1 - t**2)
        da = np.concatenate([dc * i * (1 - g**2), dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dh * t * o * (1 - o)], axis=1)
        self.grads["W"] += z.T @ da
        dz = da @ self.params["W"].T
        n_in = z.shape[1] - self.H - 1
        self.dh_prev, self.dc_prev = dz[:, n_in:-1], dc * f
        return dz[:, :n_in]

    def run(self, xs):
        return np.stack([self.forward(x) for x in xs])

    def run_back(self, dhs):
        self.dh_prev = self.dc_prev = 0
        return np.stack([self.backward(dh + self.dh_prev, self.dc_prev) for dh in dhs[::-1]][::-1])
'''

# Softmax cross-entropy with index targets through the file's own head; one matrix per gate acting on [h, x]
# rows; the backward takes the targets and returns a gradients dict.
CROSS_ENTROPY = '''
import numpy as np

LSTM_COMPARE = {
    "step_forward": "forward(x, h, c, params) -> h, c, y, cache",
    "step_backward": "backward(target, dh, dc, cache) -> grads, dh, dc, dx",
    "layout": {"Wf": "h x | f", "Wi": "h x | i", "Wc": "h x | g", "Wo": "h x | o",
               "bf": "1 | f", "bi": "1 | i", "bc": "1 | g", "bo": "1 | o", "Why": "h | y", "by": "1 | y"},
    "loss": "cross_entropy",
}

def sig(z):
    return 1 / (1 + np.exp(-z))

def forward(x, h, c, p):
    z = np.hstack([h, x])
    f, i = sig(z @ p["Wf"] + p["bf"]), sig(z @ p["Wi"] + p["bi"])
    g, o = np.tanh(z @ p["Wc"] + p["bc"]), sig(z @ p["Wo"] + p["bo"])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    y = h_next @ p["Why"] + p["by"]
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return h_next, c_next, y, (z, c, c_next, f, i, g, o, h_next, e / e.sum(axis=1, keepdims=True), p)

def backward(target, dh, dc, cache):
    z, c, c_next, f, i, g, o, h, prob, p = cache
    dy = prob.copy()
    dy[np.arange(len(target)), target] -= 1
    dh = dh + dy @ p["Why"].T
    t = np.tanh(c_next)
    dc = dc + dh * o * (1 - t**2)
    d = {"f": dc * c * f * (1 - f), "i": dc * g * i * (1 - i), "c": dc * i * (1 - g**2), "o": dh * t * o * (1 - o)}
    grads = {"dWhy": h.T @ dy, "dby": dy.sum(axis=0)}
    dz = 0
    for k, dk in d.items():
        grads["dW" + k], grads["db" + k] = z.T @ dk, dk.sum(axis=0)
        dz = dz + dk @ p["W" + k].T
    H = h.shape[1]
    return grads, dz[:, :H], dc * f, dz[:, H:]
'''

# The question's dense head and MSE loss in the file itself (its backward takes dy and returns the head's
# gradients); separate input and recurrent matrices with blocks o, g, i, f; (1, n) biases; no dx; whole-sequence
# functions on (N, T, n) arrays that take c0 and return the loss.
MSE_HEAD = '''
import numpy as np

LSTM_COMPARE = {
    "step_forward": "step(x, h, c, Wx, Wh, b, Wy, by) -> y, h, c, cache",
    "step_backward": "step_back(dy, dh, dc, cache) -> dWx, dWh, db, dWy, dby, dh, dc",
    "sequence_forward": "run(xs, h, c, targets, params) -> ys, loss, cache",
    "sequence_backward": "run_back(dys, cache) -> grads, dh, dc",
    "layout": {"Wx": "x | o g i f", "Wh": "h | o g i f", "b": "1 | o g i f", "Wy": "h | y", "by": "1 | y"},
    "loss": "mse",
    "biases": "2d",
    "sequence_axes": "NTn",
}

def sig(z):
    return 1 / (1 + np.exp(-z))

def step(x, h, c, Wx, Wh, b, Wy, by):
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    o, g, i, f = sig(a[:, :H]), np.tanh(a[:, H:2*H]), sig(a[:, 2*H:3*H]), sig(a[:, 3*H:])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    return h_next @ Wy + by, h_next, c_next, (x, h, c, c_next, o, g, i, f, h_next, Wh, Wy)

def step_back(dy, dh, dc, cache):
    x, h, c, c_next, o, g, i, f, h_next, Wh, Wy = cache
    dh = dh + dy @ Wy.T
    t = np.tanh(c_next)
    dc = dc + dh * o * (1 - t**2)
    da = np.concatenate([dh * t * o * (1 - o), dc * i * (1 - g**2), dc * g * i * (1 - i), dc * c * f * (1 - f)],
                        axis=1)
    return x.T @ da, h.T @ da, da.sum(0, keepdims=True), h_next.T @ dy, dy.sum(0, keepdims=True), da @ Wh.T, dc * f

def run(xs, h, c, targets, p):
    ys, caches, loss = [], [], 0.0
    for t in range(xs.shape[1]):
        y, h, c, cache = step(xs[:, t], h, c, p["Wx"], p["Wh"], p["b"], p["Wy"], p["by"])
        loss += ((y - targets[:, t]) ** 2).mean(axis=1).sum()
        ys.append(y)
        caches.append(cache)
    return np.stack(ys, axis=1), loss, caches

def run_back(dys, caches):
    names = ("Wx", "Wh", "b", "Wy", "by")
    grads = dict.fromkeys(names, 0)
    dh = dc = 0
    for t in reversed(range(dys.shape[1])):
        *step_grads, dh, dc = step_back(dys[:, t], dh, dc, caches[t])
        grads = {k: grads[k] + v for k, v in zip(names, step_grads)}
    return grads, dh, dc
'''

# Single 1-D vectors, PyTorch's storage (weights (4H, in) acting from the left, blocks i, f, g, o), no sequence.
SINGLE = '''
import numpy as np

LSTM_COMPARE = {
    "step_forward": "cell(x, h, c, Wih, Whh, b) -> h, c, cache",
    "step_backward": "cell_back(dh, dc, cache) -> dx, dh, dc, dWih, dWhh, db",
    "layout": {"Wih": "x | i f g o", "Whh": "h | i f g o", "b": "1 | i f g o"},
    "vectors": "single",
    "matrices": "left",
}

def sig(z):
    return 1 / (1 + np.exp(-z))

def cell(x, h, c, Wih, Whh, b):
    H = h.shape[0]
    a = Wih @ x + Whh @ h + b
    i, f, g, o = sig(a[:H]), sig(a[H:2*H]), np.tanh(a[2*H:3*H]), sig(a[3*H:])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next, (x, h, c, c_next, i, f, g, o, Wih, Whh)

def cell_back(dh, dc, cache):
    x, h, c, c_next, i, f, g, o, Wih, Whh = cache
    t = np.tanh(c_next)
    dc = dc + dh * o * (1 - t**2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2), dh * t * o * (1 - o)])
    return Wih.T @ da, Whh.T @ da, dc * f, np.outer(da, x), np.outer(da, h), da
'''

# Whole-sequence functions only (the step modes run them on one-step slices fed the state and the gradients
# entering after the slice), separate matrices with blocks f, i, g, o, (T, N, n) arrays.
SEQUENCE_ONLY = '''
import numpy as np

LSTM_COMPARE = {
    "sequence_forward": "lstm_forward(xs, h, c, Wx, Wh, b) -> hs, cs, cache",
    "sequence_backward": "lstm_backward(dhs, dh, dc, cache) -> dxs, dh, dc, dWx, dWh, db",
    "layout": {"Wx": "x | f i g o", "Wh": "h | f i g o", "b": "1 | f i g o"},
}

def sig(z):
    return 1 / (1 + np.exp(-z))

def lstm_forward(xs, h, c, Wx, Wh, b):
    H = h.shape[1]
    hs, cs, cache = [], [], []
    for x in xs:
        a = x @ Wx + h @ Wh + b
        f, i, g, o = sig(a[:, :H]), sig(a[:, H:2*H]), np.tanh(a[:, 2*H:3*H]), sig(a[:, 3*H:])
        cache.append((x, h, c, f, i, g, o))
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.stack(hs), np.stack(cs), (cache, cs, Wx, Wh)

def lstm_backward(dhs, dh, dc, cache):
    steps, cs, Wx, Wh = cache
    dWx, dWh, db, dxs = 0, 0, 0, []
    for t in reversed(range(len(dhs))):
        x, h, c, f, i, g, o = steps[t]
        dh = dh + dhs[t]
        tc = np.tanh(cs[t])
        dc = dc + dh * o * (1 - tc**2)
        da = np.concatenate([dc * c * f * (1 - f), dc * g * i * (1 - i), dc * i * (1 - g**2), dh * tc * o * (1 - o)],
                            axis=1)
        dWx, dWh, db = dWx + x.T @ da, dWh + h.T @ da, db + da.sum(axis=0)
        dxs.insert(0, da @ Wx.T)
        dh, dc = da @ Wh.T, dc * f
    return np.stack(dxs), dh, dc, dWx, dWh, db
'''

SHAPES = {"columns": COLUMNS, "stateful": STATEFUL, "cross_entropy": CROSS_ENTROPY, "mse_head": MSE_HEAD,
          "single": SINGLE, "sequence_only": SEQUENCE_ONLY}
MODES = {"columns": ("isolated", "chained", "sequence"), "stateful": ("isolated", "chained", "sequence"),
         "cross_entropy": ("isolated", "chained"), "mse_head": ("isolated", "chained", "sequence"),
         "single": ("isolated", "chained"), "sequence_only": ("isolated", "chained", "sequence")}
OUTPUTS = {"columns": 1, "stateful": 2, "cross_entropy": 3, "mse_head": 2, "single": 1, "sequence_only": 1}
BATCH = {shape: 4 for shape in SHAPES} | {"single": None}  # the batch each shape takes


def write(tmp_path, shape, *edits):
    text = textwrap.dedent(SHAPES[shape])
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in the {shape} file"
        text = text.replace(old, new)
    path = tmp_path / f"{shape}.py"
    path.write_text(text)
    return path


def compare_file(path, shape, **spec):
    return run(path, Config(spec=ProblemSpec(outputs=OUTPUTS[shape], **spec), references=REFERENCES))


@pytest.mark.parametrize(("shape", "batch"), [(shape, batch) for shape in SHAPES
                                               for batch in dict.fromkeys((None, BATCH[shape]))])
def test_declared_file_matches_both_references_in_every_mode_it_allows(tmp_path, shape, batch):
    report = compare_file(write(tmp_path, shape), shape, batch=batch)
    assert report.findings == () and report.failures == ()
    compared = {(d.reference, d.mode, d.phase) for d in report.diffs}
    assert compared == {(r, m, p) for r in REFERENCES for m in MODES[shape] for p in ("forward", "backward")}
    tensors = {d.tensor for d in report.diffs if d.mode == "isolated"}
    assert {"f", "i", "g", "o", "c", "h", "dWf", "dWi", "dWg", "dWo", "dbf", "dh_prev", "dc_prev"} <= tensors
    assert ("dx" in tensors) == (shape != "mse_head")  # what its backward returns
    assert ("y" in tensors) == (shape in ("cross_entropy", "mse_head"))  # the output of its own head
    assert ({"dWy", "dby"} <= tensors) == (shape == "mse_head")  # only an MSE head's gradients are the harness's


@pytest.mark.parametrize("shape", SHAPES)
def test_declared_file_matches_in_float32(tmp_path, shape):
    report = compare_file(write(tmp_path, shape), shape, batch=BATCH[shape], dtype="float32")
    assert report.findings == () and report.failures == ()


def test_whole_sequence_code_without_c_starts_from_a_zero_cell_state_and_compares_totals(tmp_path):
    report = compare_file(write(tmp_path, "columns"), "columns")
    assert any("c0 = 0 in every mode" in note for note in report.notes)
    totals = {d.tensor for d in report.diffs if d.mode == "sequence" and (d.steps < 0).all()}
    assert {"dWf", "dbo", "dh0"} <= totals


def test_an_mse_head_compares_its_own_outputs_loss_and_head_gradients_over_the_sequence(tmp_path):
    report = compare_file(write(tmp_path, "mse_head"), "mse_head", batch=3)
    sequence = {d.tensor for d in report.diffs if d.mode == "sequence"}
    assert {"y", "loss", "dWy", "dby", "dWo", "dh0", "dc0"} <= sequence
    assert not any("c0 = 0" in note for note in report.notes)  # its whole-sequence forward takes c


def test_declaration_wins_over_the_names_a_file_defines(tmp_path):
    path = write(tmp_path, "columns", ("def sig(z):", "def lstm(*a):\n    pass\n\ndef dlstm(*a):\n    pass\n\n"
                                                      "def sig(z):"))
    binding = bind(path)
    assert binding.convention == "declared"
    assert detect(binding.module)[1] == "it declares its layout in LSTM_COMPARE"


# One mutation per shape: (edit, mode, phase, step, gate, tensor, the user's name for the worst element).
MUTATIONS = {
    "columns": (("sig(a[2*H:3*H])", "np.tanh(a[2*H:3*H])"), "forward", 0, "o", "o"),
    "stateful": (("dc * c_prev * f * (1 - f)", "dc * f * (1 - f)"), "backward", 11, "f", "dWf"),
    "cross_entropy": (('"c": dc * i * (1 - g**2)', '"c": dc * i * (1 - g)'), "backward", 11, "g", "dWg"),
    "mse_head": (("h_next.T @ dy", "h.T @ dy"), "backward", 11, "", "dWy"),
    "single": (("sig(a[3*H:])", "np.tanh(a[3*H:])"), "forward", 0, "o", "o"),
    "sequence_only": (("dc * g * i * (1 - i)", "dc * g * (1 - i)"), "backward", 11, "i", "dWi"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_mutated_declared_file_is_located_at_its_step_gate_and_tensor(tmp_path, shape):
    edit, phase, step, gate, tensor = MUTATIONS[shape]
    report = run(write(tmp_path, shape, edit), Config(spec=ProblemSpec(outputs=OUTPUTS[shape]),
                                                      references=("torch",), modes=("isolated",)))
    finding = report.findings[0]
    assert (finding.phase, finding.step, finding.gate, finding.tensor) == (phase, step, gate, tensor)


def test_stateful_gradient_is_named_in_the_users_own_matrix(tmp_path):
    edit = MUTATIONS["stateful"][0]
    report = run(write(tmp_path, "stateful", edit), Config(references=("jax",), modes=("isolated",)))
    finding = report.findings[0]
    row, col = finding.worst_index  # internal dWf[row, col]: the f block is the third of g, i, f, o
    assert finding.user_tensor == f"dW[{row}, {10 + col}] (f block)"


def test_cross_entropy_harness_feeds_its_own_dl_dh_so_a_wrong_softmax_gradient_is_caught(tmp_path):
    path = write(tmp_path, "cross_entropy", ("dy[np.arange(len(target)), target] -= 1", "pass"))
    report = run(path, Config(spec=ProblemSpec(outputs=3), references=("torch",), modes=("isolated",)))
    finding = report.findings[0]
    assert (finding.phase, finding.step, finding.gate, finding.tensor) == ("backward", 11, "o", "dWo")
    assert "dh = dy @ Wy.T + dh_next, computed inside the step" in finding.message  # not "dh is given"


# Each bad declaration as edits of the column-vector file, and the sentence that answers it.
STEPLESS = ('    "step_forward": "step(x, h, c, W, b) -> h, c, cache",\n'
            '    "step_backward": "step_back(dh, dc, cache) -> dx, dh, dc, dW, db",\n', '')  # whole-sequence only
BAD = {
    "not a dict": (("LSTM_COMPARE = {", "LSTM_COMPARE = 1\n_unused = {"), "LSTM_COMPARE must be a dict (it is of "
                                                                        "type int)."),
    "unknown key": (('"vectors"', '"vector"'), "LSTM_COMPARE has an unknown key 'vector'"),
    "unknown role": (('"step_back(dh,', '"step_back(dq,'), "LSTM_COMPARE['step_backward'] takes an unknown role 'dq'"),
    "gate missing": (('"h x | i f o g"', '"h x | i f o"'), "LSTM_COMPARE['layout'] holds the x rows of gate g "
                                                           "nowhere."),
    "parameter named like a role": (('"W": "h x | i f o g"', '"W": "h x | i f o g", "c": "h | y", "by": "1 | y"'),
                                    "LSTM_COMPARE['layout'] names a parameter 'c', which is a role; call it something "
                                    "else."),
    "gate twice": (('"1 | i f o g"', '"1 h | i f o g"'), "LSTM_COMPARE['layout'] holds the h rows of gate f twice."),
    "wrong type": (('"vectors": "columns"', '"vectors": 3'),
                   "LSTM_COMPARE['vectors'] must be 'rows', 'columns' or 'single'."),
    "bad orientation": (('"vectors": "columns"', '"vectors": "columns", "matrices": "W @ x"'),
                        "LSTM_COMPARE['matrices'] must be 'left' (W @ x, stored (out, in)) or 'right'"),
    "no function": (('"run(xs', '"runs(xs'), "has no runs, which LSTM_COMPARE['sequence_forward'] declares."),
    "wrong arity": (('step(x, h, c, W, b) ->', 'step(x, h, c, W) ->'), "step cannot be called as step(x, h, c, W)"),
    "one sequence function": (('"run_back(dhs, cache) -> dxs, dh, dW, db"', 'None'),
                              "LSTM_COMPARE['sequence_backward'] must be a string"),
    "loss without head": (('"vectors": "columns",', '"vectors": "columns", "loss": "mse",'),
                          "LSTM_COMPARE['loss'] 'mse' needs the head in the layout"),
    "target without cross-entropy": (('"step_back(dh, dc, cache)', '"step_back(dh, dc, target)'),
                                     "LSTM_COMPARE['step_backward'] takes target, which only a 'cross_entropy' loss "
                                     "gives."),
    "sequence only without c": ((STEPLESS,), "LSTM_COMPARE['sequence_forward'] must return cs or c (or declare the "
                                             "attribute c_next), as a file without step functions must."),
    "sequence only without dh": ((STEPLESS, ('run(xs, h, W, b) -> hs,', 'run(xs, h, c, W, b) -> hs, cs,'),
                                  ('-> dxs, dh, dW', '-> dxs, dh, dc, dW')),
                                 "LSTM_COMPARE['sequence_forward'] must take c, and sequence_backward dh and dc"),
    "cache without steps": ((STEPLESS, ('run(xs, h, W, b) -> hs,', 'run(xs, h, c, W, b) -> hs, cs,'),
                             ('run_back(dhs, cache) -> dxs, dh, dW',
                              'run_back(dhs, dh, dc, cache) -> dxs, dh, dc, dW')),
                            "LSTM_COMPARE['cache'] describes a step's cache, and the file declares no step functions"),
    "attributes without class": (('"vectors": "columns",', '"vectors": "columns", "attributes": {"h_prev": "h"},'),
                                 "LSTM_COMPARE['attributes'] needs a 'class' whose instances keep them."),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_declaration_is_one_clear_sentence(tmp_path, case):
    edits, message = BAD[case]
    with pytest.raises(UsageError) as error:
        bind(write(tmp_path, "columns", *(edits if isinstance(edits[0], tuple) else (edits,))))
    assert message in str(error.value) and str(error.value).count(". ") == 0


def test_forcing_the_declared_convention_on_a_file_without_a_declaration_is_one_sentence():
    with pytest.raises(UsageError, match=r"cs231n_lstm defines no LSTM_COMPARE, which the declared convention "
                                         r"requires\.$"):
        bind(lstm_compare.handrolled.cs231n_lstm, "declared")


def test_a_class_without_its_method_is_one_clear_sentence(tmp_path):
    path = write(tmp_path, "stateful", ("def run_back(self, dhs):", "def back(self, dhs):"))
    with pytest.raises(UsageError, match=r"has no Cell.run_back, which LSTM_COMPARE\['sequence_backward'\] declares"):
        bind(path)


def test_report_command_takes_the_declared_convention_and_names_the_users_matrix(tmp_path, capsys):
    path = write(tmp_path, "cross_entropy", ('"c": dc * i * (1 - g**2)', '"c": dc * i * (1 - g)'))
    code, out, _ = report_cli(capsys, "--impl", path, "--convention", "declared", "--outputs", "3",
                              "--reference", "jax", "--out", tmp_path / "out")
    assert code == 1
    assert "jax    isolated  DIVERGED" in out and "first: backward step 11, gate g, dWg (yours: dWc[" in out


def test_cross_entropy_with_one_class_is_refused_in_one_sentence(tmp_path, capsys):
    code, _, err = report_cli(capsys, "--impl", write(tmp_path, "cross_entropy"), "--out", tmp_path / "out")
    assert code == 2
    assert "needs two classes or more: run it with --outputs 2 or more." in err


def test_single_vector_file_is_told_it_takes_no_batch(tmp_path):
    with pytest.raises(UsageError, match=r"takes single vectors only \(.*so it takes no batch\); leave out --batch"):
        compare_file(write(tmp_path, "single"), "single", batch=4)


def test_a_wrong_number_of_returned_values_names_the_declaration(tmp_path):
    path = write(tmp_path, "columns", ("return h_next, c_next, (z,", "return h_next, (z,"))
    with pytest.raises(UsageError, match=r"^step \(declared as step\(x, h, c, W, b\) -> h, c, cache\) must return 3 "
                                         r"values, but returned 2 values\.$"):
        run(path, Config(references=("jax",), modes=("isolated",)))


@pytest.mark.parametrize(("vectors", "biases", "shape"), [("rows", "1d", (20,)), ("rows", "2d", (1, 20)),
                                                          ("columns", "2d", (20, 1)), ("columns", "1d", (20,))])
def test_a_bias_alone_is_stored_as_declared(tmp_path, vectors, biases, shape):
    path = write(tmp_path, "columns", ('"vectors": "columns"', f'"vectors": "{vectors}", "biases": "{biases}"'))
    params = make_problem(ProblemSpec(hidden=5, inputs=3)).params
    assert bind(path).user_params(params)["b"].shape == shape


def test_a_declared_file_whose_script_part_fails_still_binds_by_its_declaration(tmp_path):
    path = write(tmp_path, "columns")
    path.write_text(path.read_text() + "\nassert False, 'my training did not converge'\n")
    report = run(path, Config(references=("jax",), modes=("isolated",)))
    assert report.findings == () and report.naming.convention == "declared"
    assert any("only its definitions were loaded" in note for note in report.notes)


@pytest.mark.parametrize("shape", SHAPES)
def test_declared_layout_round_trip_is_exact_and_every_entry_is_located(tmp_path, shape):
    binding = bind(write(tmp_path, shape))
    layout = binding.layout + binding.head_layout
    params = make_problem(ProblemSpec(hidden=4, inputs=3, outputs=2, seed=3)).params
    user, sizes = to_user(layout, params), Sizes.of(params)
    back = to_internal(layout, user, sizes)
    assert {"Wf", "Wi", "Wg", "Wo", "bf", "bi", "bg", "bo"} <= back.keys()
    for name, value in back.items():
        np.testing.assert_array_equal(value, params[name])
        for index in np.ndindex(value.shape):
            matrix, user_index, _ = locate_entry(layout, name, index, sizes)
            assert user[matrix.name][user_index] == value[index]


@pytest.mark.parametrize(("old", "new", "path"), [('"W": "params.W"', '"W": "params.Wx"', "params.Wx"),
                                                  ('"h_prev": "h"', '"h_prev": "hh"', "hh")])
def test_a_declared_attribute_the_class_does_not_have_is_one_sentence_not_a_divergence(tmp_path, old, new, path):
    file = write(tmp_path, "stateful", (old, new))
    with pytest.raises(UsageError, match=f"LSTM_COMPARE's attributes name '{path}', which a new Cell does not have"):
        run(file, Config(references=("torch",), modes=("isolated",)))
