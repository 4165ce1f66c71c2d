"""Finite-difference reference: central differences in float64, NumPy only, for small problems.

No framework and no analytic derivative: every gradient here is ``(L(v + d) - L(v - d)) / 2d`` of the question's
convention's loss, run from the problem's own initial state (h0, c0), the same one the analytic gradient
starts from.  (Starting the differences from another state, such as the final one a forward returns, is what
makes a hand-written gradient check fail; see examples/seed_question.)

What it covers: the forward tensors (its own float64 forward), the totals (loss, final state, the gradient of
every parameter entry, of every input, of h0 and c0), and every per-step backward quantity, each by central
differences through a zero-valued probe: on the gate pre-activations, on y_t, and on the state entering step t
(as ``references/jax_lstm.py`` does analytically).  The perturbed copies run together as one NumPy batch; the
probes of a few consecutive steps restart from the recorded state entering the first of them, so a trace costs
about 2 P T + (X + 6H + O) T**2 step-copies (P parameter entries).  A float32 problem is traced in float64.

Step, floor and tolerances, measured in float64 against JAX on 35 problems (T 1..100, H 1..16, X 1..3,
O 1..3, unbatched and B = 4, zero and random initial state; 17,095 parameter entries):

- STEP = 1e-5.  Central differences err by about d**2 |L'''| / 6 (truncation) plus eps |L| / d (rounding).
  The worst absolute error over every parameter entry was 6.8e-9 at d = 1e-5, against 2.4e-7 at d = 1e-4
  (truncation) and 7.5e-8 at d = 1e-6 (rounding); the worst norm-wise error 9.3e-10, against 3.4e-8 and 1.0e-8.
- The error is absolute, not relative: at most 1.2e-10 |L| (L the loss) whatever the entry's own size.  So
  ``relative_error(a, n, floor) = |a - n| / max(|a| + |n|, floor)`` is used with ``floor_for(L) = 1e-4
  max(|L|, 1)``: an entry smaller than that has no relative accuracy to test, and is held to
  |a - n| <= RTOL * floor instead.  The worst relative error of a correct gradient was then 5.5e-7; RTOL = 1e-5
  is 18 times that, and four orders of magnitude below what a wrong derivative gives (1e-1 .. 1).
- TOLERANCE, for the engine (norm-wise per tensor and step: atol + rtol * max|truth|): the worst error of any
  per-step quantity or total was 6.8e-9 absolute (T = 100, |L| near 100), and 2.8e-8 at MAX_STEPS = 200 (|L|
  near 200); atol = 1e-7 covers that, and rtol = 1e-6 covers truncation where a tensor is large.  In a
  float32 run the engine compares with this float64 trace and has no noise floor for it, so a correct float32
  implementation passes only while its rounding drift stays within the float32 table's tolerance.

Problems longer than MAX_STEPS, or needing more than MAX_WORK multiply-adds (5e9: about 5 to 10 s here), are
refused with ``TooLarge``, a ``ValueError`` whose one-sentence message states the limit.
"""

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from lstm_compare.references import ReferenceRefused
from lstm_compare.references.layout import PARAM_NAMES
from lstm_compare.lstm.records import FORWARD_TENSORS, STATE_TENSORS, Problem, Totals, Trace, grads_entering_later_steps

NAME = "numeric"
COMPUTES_IN_FLOAT64 = True  # whatever the problem's dtype: its float64 run is its same-dtype run too
STEP = 1e-5  # the central-difference step
FLOOR_PER_LOSS = 1e-4  # relative errors are taken against at least this times max(|loss|, 1)
RTOL = 1e-5  # a gradient entry whose relative error exceeds this disagrees
MAX_STEPS = 200
MAX_WORK = 5e9  # multiply-adds; report's default T=12 H=5 X=3 needs 1.6e6, T=100 H=64 X=8 needs 1.4e11
CHUNK = 4_000_000  # floats held per batch of perturbed copies
COPIES_PER_BATCH = 1024  # probe copies run together, to amortise NumPy's per-call cost over many of them
SITES = ("x", "h_prev", "c_prev", "f_pre", "i_pre", "g_pre", "o_pre", "y")  # where probes enter, per step


@dataclass(frozen=True)
class NumericTolerance:
    """The engine's tolerance for this reference: norm-wise, ``atol + rtol * max|truth|`` per tensor and step."""

    rtol: float
    atol: float


TOLERANCE = NumericTolerance(rtol=1e-6, atol=1e-7)


class TooLarge(ReferenceRefused):
    """The problem is longer than MAX_STEPS or needs more finite-difference work than MAX_WORK."""


def floor_for(loss: float) -> float:
    """The smallest denominator ``relative_error`` should use for a loss of this size (see the module notes)."""
    return FLOOR_PER_LOSS * max(abs(float(loss)), 1.0)


def relative_error(analytic: np.typing.ArrayLike, numeric: np.typing.ArrayLike, floor: float) -> np.ndarray:
    """|a - n| / max(|a| + |n|, floor), elementwise; NaN or Inf in either gives NaN (which fails every check)."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)
    return np.where(np.isfinite(a) & np.isfinite(n), error, np.nan)


def central_differences(loss: Callable[[dict[str, np.ndarray]], float], params: dict[str, np.ndarray],
                        entries: Sequence[tuple[str, int]], step: float = STEP) -> np.ndarray:
    """d loss / d params[name].flat[index] for each (name, index) in ``entries``, by central differences.

    ``loss(params) -> float`` is called twice per entry; ``params`` (a dict of float64 arrays) is changed in
    place for each call and restored after.  The divisor is the step actually taken, (v + d) - (v - d).
    """
    grads = np.empty(len(entries))
    for k, (name, index) in enumerate(entries):
        value = params[name].flat[index]
        up, down = value + step, value - step
        try:
            params[name].flat[index] = up
            plus = loss(params)
            params[name].flat[index] = down
            minus = loss(params)
        finally:
            params[name].flat[index] = value
        grads[k] = (plus - minus) / (up - down)
    return grads


def work(problem: Problem) -> int:
    """Multiply-adds one trace of ``problem`` costs: (2 P T + B (X + 6H + O) T (T + 1)) step-copies."""
    T, B, X, H, O, P = _sizes(problem)
    step_copies = 2 * P * T + B * (X + 6 * H + O) * T * (T + 1)
    return step_copies * B * ((X + H) * 4 * H + H * O)


def check_size(problem: Problem) -> None:
    """Raise ``TooLarge`` (one sentence, with the limit) when finite differences would be too slow or too noisy."""
    T, B, X, H, O, _ = _sizes(problem)
    if T > MAX_STEPS:
        raise TooLarge(f"the numeric reference takes at most {MAX_STEPS} steps (its finite differences grow "
                       f"noisier with the loss), not T={T}; use smaller --steps.")
    needed = work(problem)
    if needed > MAX_WORK:
        raise TooLarge(f"the numeric reference needs {needed:.1e} multiply-adds of finite differences for T={T} "
                       f"H={H} X={X} O={O} B={B}, over its limit of {MAX_WORK:.0e} (T=12 H=5 X=3 needs 1.6e+06); "
                       f"use smaller --steps or --hidden.")


def trace(problem: Problem) -> Trace:
    """Forward tensors, per-step backward quantities and totals, all in float64 by central differences."""
    check_size(problem)
    params, inputs, targets, h0, c0 = _batched64(problem)
    loss, steps, h_last, c_last = _run(_with_copy_axis(params), inputs, targets, 0, h0[None], c0[None],
                                       record=True)
    forward = {name: np.stack([s[name][0] for s in steps]) for name in FORWARD_TENSORS + STATE_TENSORS}
    probed = _site_gradients(params, inputs, targets, forward)  # site -> (T, B, n)
    backward = {"dy": probed["y"], **{f"d{k}_pre": probed[f"{k}_pre"] for k in "figo"},
                "dh_prev": probed["h_prev"], "dc_prev": probed["c_prev"]}
    backward["dh_next"] = grads_entering_later_steps(backward["dh_prev"])
    backward["dc_next"] = grads_entering_later_steps(backward["dc_prev"])
    grads = _param_gradients(params, inputs, targets, h0, c0)
    unbatch: Callable[[np.ndarray], np.ndarray] = (
        (lambda a: a[:, 0]) if problem.inputs.ndim == 2 else (lambda a: a))  # noqa: E731
    forward = {name: unbatch(value) for name, value in forward.items()}
    backward = {name: unbatch(value) for name, value in backward.items()}
    first: Callable[[np.ndarray], np.ndarray] = (
        (lambda a: a[0]) if problem.inputs.ndim == 2 else (lambda a: a))  # noqa: E731
    totals = Totals(loss=float(loss[0]), outputs=forward["y"], h_last=first(h_last[0]), c_last=first(c_last[0]),
                    grads=grads, dinputs=unbatch(probed["x"]), dh0=backward["dh_prev"][0],
                    dc0=backward["dc_prev"][0])
    return Trace(NAME, forward, backward, totals)


def _sizes(problem: Problem) -> tuple[int, int, int, int, int, int]:
    T, X = problem.inputs.shape[0], problem.inputs.shape[-1]
    B = problem.inputs.shape[1] if problem.inputs.ndim == 3 else 1
    H, O = problem.h0.shape[-1], problem.targets.shape[-1]
    P = sum(int(np.size(problem.params[name])) for name in PARAM_NAMES)
    return T, B, X, H, O, P


def _batched64(problem: Problem) -> tuple[Any, ...]:
    """float64 copies with a batch axis always present: inputs (T, B, X), targets (T, B, O), h0 and c0 (B, H)."""
    cast: Callable[[Any], np.ndarray] = lambda a: np.array(a, dtype=np.float64)  # noqa: E731
    params = {name: cast(problem.params[name]) for name in PARAM_NAMES}
    arrays = [cast(a) for a in (problem.inputs, problem.targets, problem.h0, problem.c0)]
    if problem.inputs.ndim == 2:
        arrays = [arrays[0][:, None], arrays[1][:, None], arrays[2][None], arrays[3][None]]
    return params, *arrays


def _with_copy_axis(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: value[None] for name, value in params.items()}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Overflow-free logistic; written here, not imported from handrolled, so the reference stays independent."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@dataclass(frozen=True)
class _Probes:
    """Copy k adds ``step[k]`` to entry (b[k], j[k]) of ``SITES[site[k]]`` at step t[k]; all arrays are (K,)."""

    site: np.ndarray
    t: np.ndarray
    b: np.ndarray
    j: np.ndarray
    step: np.ndarray


def _probed(value: np.ndarray, probes: "_Probes | None", site: str, t: int) -> np.ndarray:
    """``value`` (K or 1, B, n) with this step's probes on ``site`` added, one entry per copy."""
    if probes is None:
        return value
    k = np.flatnonzero((probes.site == SITES.index(site)) & (probes.t == t))
    if k.size == 0:
        return value
    value = np.array(np.broadcast_to(value, (len(probes.t), *value.shape[1:])))
    value[k, probes.b[k], probes.j[k]] += probes.step[k]
    return value


def _run(params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray, t0: int, h: np.ndarray, c: np.ndarray,
         probes: _Probes | None = None, record: bool = False
         ) -> tuple[np.ndarray, list[dict[str, np.ndarray]], np.ndarray, np.ndarray]:
    """The loss of steps t0 ... T-1 for every copy: (K,), each step's tensors when ``record``, and the last state.

    ``params`` map to (K or 1, ...) arrays, ``h`` and ``c`` are (K or 1, B, H), inputs (T, B, X), targets (T, B, O).
    """
    loss: np.ndarray = 0.0  # type: ignore[assignment]  # a (K,) array from the first step on
    steps = []
    for t in range(t0, len(inputs)):
        x = _probed(inputs[t][None], probes, "x", t)  # (K|1, B, X)
        h_prev, c_prev = _probed(h, probes, "h_prev", t), _probed(c, probes, "c_prev", t)  # (K|1, B, H)
        K = max(len(x), len(h_prev))
        xh = np.concatenate([np.broadcast_to(x, (K, *x.shape[1:])),
                             np.broadcast_to(h_prev, (K, *h_prev.shape[1:]))], axis=-1)  # (K, B, X+H)
        pre = {k: _probed(xh @ params[f"W{k}"] + params[f"b{k}"][:, None], probes, f"{k}_pre", t) for k in "figo"}
        f, i, o = _sigmoid(pre["f"]), _sigmoid(pre["i"]), _sigmoid(pre["o"])
        g = np.tanh(pre["g"])
        c = f * c_prev + i * g
        c_tanh = np.tanh(c)
        h = o * c_tanh
        y = _probed(h @ params["Wy"] + params["by"][:, None], probes, "y", t)  # (K, B, O)
        loss = loss + ((y - targets[t]) ** 2).mean(axis=-1).sum(axis=-1)
        if record:
            steps.append(dict(f_pre=pre["f"], i_pre=pre["i"], g_pre=pre["g"], o_pre=pre["o"], f=f, i=i, g=g, o=o,
                              c=c, c_tanh=c_tanh, h=h, y=y, h_prev=h_prev, c_prev=c_prev))
    return loss, steps, h, c


def _site_gradients(params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray,
                    forward: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """dL/d(probe) for every site, step and entry: site -> (T, B, n), in batches of steps that restart from the
    recorded state entering their first step."""
    T, B = inputs.shape[:2]
    widths: dict[str, int] = {"x": inputs.shape[-1], "y": targets.shape[-1]}
    H: int = forward["h"].shape[-1]
    entries = [(s, b, j) for s, site in enumerate(SITES) for b in range(B) for j in range(widths.get(site, H))]
    site, b, j = (np.array(column) for column in zip(*entries))  # one step's probes, (E,) each
    E = len(entries)
    per_copy = B * (inputs.shape[-1] + 3 * H)  # floats a copy holds at once, roughly
    steps_per_batch = max(1, min(T, COPIES_PER_BATCH // (2 * E) + 1, CHUNK // (2 * E * per_copy) + 1))
    grads = {name: np.zeros((T, B, widths.get(name, H))) for name in SITES}
    params = _with_copy_axis(params)
    for t0 in range(0, T, steps_per_batch):
        ts = np.arange(t0, min(T, t0 + steps_per_batch))
        t = np.repeat(ts, E)
        sign = np.concatenate([np.full(len(t), STEP), np.full(len(t), -STEP)])
        probes = _Probes(np.tile(site, 2 * len(ts)), np.tile(t, 2), np.tile(b, 2 * len(ts)),
                         np.tile(j, 2 * len(ts)), sign)
        loss, _, _, _ = _run(params, inputs, targets, t0, forward["h_prev"][t0][None], forward["c_prev"][t0][None],
                             probes)
        half = len(t)
        diff = (loss[:half] - loss[half:]) / (2 * STEP)
        for s, name in enumerate(SITES):
            mine = probes.site[:half] == s
            grads[name][probes.t[:half][mine], probes.b[:half][mine], probes.j[:half][mine]] = diff[mine]
    return grads


def _param_gradients(params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray, h0: np.ndarray,
                     c0: np.ndarray) -> dict[str, np.ndarray]:
    """dL/d(every parameter entry), perturbing each entry of a copy of the parameters by +-STEP."""
    grads = {}
    for name in PARAM_NAMES:
        value = params[name]
        n = value.size
        per_batch = max(1, CHUNK // (2 * n))
        flat = np.empty(n)
        for start in range(0, n, per_batch):
            index = np.arange(start, min(n, start + per_batch))
            m = len(index)
            copies = np.repeat(value.reshape(1, -1), 2 * m, axis=0)  # (2m, n)
            copies[np.arange(m), index] += STEP
            copies[m + np.arange(m), index] -= STEP
            taken = copies[np.arange(m), index] - copies[m + np.arange(m), index]
            batch = {**_with_copy_axis(params), name: copies.reshape(2 * m, *value.shape)}
            loss, _, _, _ = _run(batch, inputs, targets, 0, h0[None], c0[None])
            flat[index] = (loss[:m] - loss[m:]) / taken
        grads[name] = flat.reshape(value.shape)
    return grads
