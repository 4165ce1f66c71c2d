"""A public catalog of known hand-written-LSTM bugs, each a one-line mutation of
``lstm_compare/handrolled/question_lstm.py`` (the other conventions' catalogs, of the other files in
``lstm_compare/handrolled/``, are in ``lstm_compare/catalogs/conventions.py``).

Each ``Bug`` names where the harness must find it (``Location``); ``check(bug)`` runs the comparison and
says whether every reference located it exactly there.  The suite's self-check and the tests use it.
"""

import importlib
import inspect
import os
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

from lstm_compare.modes.records import Config

from lstm_compare.modes.pipeline import run
from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.lstm.where import Direction, Mode, Phase, Placed, Where


@dataclass(frozen=True)
class Location(Placed):
    """Where a bug must first show: a ``Where`` against any reference (mode, phase, tensor, and in a model the
    layer and direction) and the step (negative counts from the end; None: whole sequence), which counts in
    that slot's processing order (step 0 of the reverse direction is time T-1)."""

    where: Where
    step: int | None

    @classmethod
    def at(cls, mode: Mode, phase: Phase, step: int | None, tensor: str, layer: int = 1,
           direction: Direction = "forward") -> "Location":
        return cls(Where("", mode, phase, tensor, layer, direction), step)

    def resolve(self, steps: int) -> "Location":
        """The same location with a negative step turned into an absolute one for a ``steps``-long sequence."""
        step = self.step if self.step is None or self.step >= 0 else steps + self.step
        return replace(self, step=step)


@dataclass(frozen=True)
class Bug:
    """One mutation: replace ``old`` (which must occur exactly once) with ``new`` in the module ``base``."""

    name: str
    description: str
    old: str
    new: str
    expected: Location
    spec: ProblemSpec = field(default_factory=ProblemSpec)
    base: str = "lstm_compare.handrolled.question_lstm"  # the correct implementation it mutates

    def source(self) -> str:
        """The mutated source text."""
        original = inspect.getsource(importlib.import_module(self.base))
        if original.count(self.old) != 1:
            raise ValueError(f"bug {self.name!r}: {self.old!r} occurs {original.count(self.old)} times, not once")
        return original.replace(self.old, self.new)

    def module(self) -> types.ModuleType:
        """The mutated LSTM as a fresh module object."""
        module = types.ModuleType(f"lstm_compare_bug_{self.name}")
        exec(compile(self.source(), f"<bug {self.name}>", "exec"), module.__dict__)
        return module

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write the mutated LSTM to ``directory/<name>.py`` (for the command line); returns the path."""
        path = Path(directory) / f"{self.name}.py"
        path.write_text(self.source())
        return path


@dataclass(frozen=True)
class CatalogResult:
    """Where each reference located one bug, against where it must be."""

    bug: Bug
    expected: Location
    found: dict[str, Location | None]  # reference -> where it was found (None: not found)

    @property
    def ok(self) -> bool:
        return all(location == self.expected for location in self.found.values())


def check(bug: Bug, references: Sequence[str] = ("torch", "jax")) -> CatalogResult:
    """Run ``bug`` in the mode it must be found in, and compare each reference's first divergence."""
    expected = bug.expected.resolve(bug.spec.steps)
    report = run(bug.module(), Config(spec=bug.spec, references=tuple(references),  # type: ignore[arg-type]
                                      modes=(expected.mode,)))
    found: dict[str, Location | None] = {reference: None for reference in references}
    for f in report.findings:
        if f.mode == expected.mode:
            found[f.reference] = Location(f.where.anywhere(), f.step)
    return CatalogResult(bug, expected, found)


# Where each kind of bug must first show, and why:
# - a wrong line in ``lstm`` shows in isolated forward at step 0 (every step is wrong; step 0 runs first);
# - a wrong line in ``dlstm`` shows in isolated backward at step -1 (backward runs t = T-1 ... 0), at the first
#   tensor in dependency order that it touches (dWy, dby, dWo, dbo, dWf, dbf, dWi, dbi, dWg, dbg, dh_prev, dc_prev),
#   unless the line only matters when a gradient arriving from later steps is non-zero: that one is zero at the
#   last step, so the bug first shows at step -2;
# - a wrong line in the person's own loop (``lstm_loss``/``dlstm_loss``) shows only in sequence mode.
LAST, SECOND_LAST = -1, -2
MANY_OUTPUTS = ProblemSpec(outputs=2)  # the mean over outputs is the identity when O = 1: these bugs need O > 1


def _forward(tensor: str) -> Location:
    return Location.at("isolated", "forward", 0, tensor)


def _backward(tensor: str, step: int = LAST) -> Location:
    return Location.at("isolated", "backward", step, tensor)


def _sequence(phase: Phase, tensor: str, step: int | None = None) -> Location:
    return Location.at("sequence", phase, step, tensor)


CATALOG = (
    # --- the step backward ``dlstm``: isolated backward, last step unless it needs dh_next / dc_next ---
    Bug("forget_derivative_uses_c",
        "the forget-gate derivative multiplies by c instead of c_prev",
        "df_pre = dc * c_prev * f * (1 - f)", "df_pre = dc * c * f * (1 - f)",
        _backward("dWf")),
    Bug("forget_derivative_missing_c_prev",
        "the forget-gate derivative leaves out the factor c_prev (d c / d f = c_prev)",
        "df_pre = dc * c_prev * f * (1 - f)", "df_pre = dc * f * (1 - f)",
        _backward("dWf")),
    Bug("input_sigmoid_derivative_missing",
        "the input gate's sigmoid derivative i * (1 - i) is left out",
        "di_pre = dc * g * i * (1 - i)", "di_pre = dc * g",
        _backward("dWi")),
    Bug("output_sigmoid_derivative_of_pre_activation",
        "the output gate's sigmoid derivative is taken as o_pre * (1 - o_pre), on the pre-activation",
        "do_pre = dh * c_tanh * o * (1 - o)", "do_pre = dh * c_tanh * o_pre * (1 - o_pre)",
        _backward("dWo")),
    Bug("output_derivative_uses_c",
        "the output-gate derivative multiplies by c instead of tanh(c)",
        "do_pre = dh * c_tanh * o * (1 - o)", "do_pre = dh * c * o * (1 - o)",
        _backward("dWo")),
    Bug("candidate_tanh_derivative_unsquared",
        "the candidate gate's tanh' is written as 1 - g instead of 1 - g**2",
        "dg_pre = dc * i * (1 - g**2)", "dg_pre = dc * i * (1 - g)",
        _backward("dWg")),
    Bug("cell_tanh_derivative_unsquared",
        "tanh'(c) in dc is written as 1 - tanh(c) instead of 1 - tanh(c)**2; dWo does not use dc, so the "
        "forget gate's dWf is the first tensor it reaches",
        "dh * o * (1 - c_tanh**2)", "dh * o * (1 - c_tanh)",
        _backward("dWf")),
    Bug("cell_gradient_missing_o",
        "dc leaves out the factor o of h = o * tanh(c); first reaches dWf, as dWo does not use dc",
        "dh * o * (1 - c_tanh**2)", "dh * (1 - c_tanh**2)",
        _backward("dWf")),
    Bug("input_bias_grad_from_forget_gate",
        "the input gate's bias gradient is copied from the forget gate's (dbi = sum df_pre); dWi is right",
        '"bi": _sum_batch(di_pre)', '"bi": _sum_batch(df_pre)',
        _backward("dbi")),
    Bug("output_head_grad_uses_h_prev",
        "dWy is the outer product of h_prev (from xh) with dy instead of this step's h",
        '"Wy": _sum_outer(h, dy)', '"Wy": _sum_outer(xh[..., -H:], dy)',
        _backward("dWy")),
    Bug("dc_prev_not_times_f",
        "dc_prev is returned as dc instead of dc * f",
        "dxh[..., -H:], dc * f", "dxh[..., -H:], dc",
        _backward("dc_prev")),
    Bug("dh_prev_sliced_from_x",
        "dh_prev is sliced from the front of dxh, the part that belongs to x in [x, h]",
        "dxh[..., -H:], dc * f", "dxh[..., :H], dc * f",
        _backward("dh_prev")),
    Bug("dh_prev_drops_output_gate",
        "the output gate's contribution do_pre @ Wo.T to dxh (and so to dh_prev) is dropped",
        '+ dg_pre @ params["Wg"].T + do_pre @ params["Wo"].T)', '+ dg_pre @ params["Wg"].T)',
        _backward("dh_prev")),
    Bug("dxh_uses_wrong_gate_weight",
        "the forget gate's contribution to dxh multiplies by Wi.T instead of Wf.T",
        'df_pre @ params["Wf"].T', 'df_pre @ params["Wi"].T',
        _backward("dh_prev")),
    Bug("dh_next_ignored",
        "dh leaves out dh_next, the gradient reaching h from later steps; dh_next is zero at the last step, "
        "so it first shows one step earlier, at dWo (dWy and dby do not use dh)",
        'dh = dy @ params["Wy"].T + dh_next', 'dh = dy @ params["Wy"].T',
        _backward("dWo", SECOND_LAST)),
    Bug("dc_next_ignored",
        "dc leaves out dc_next, the gradient reaching c from later steps; dc_next is zero at the last step, "
        "so it first shows one step earlier, at dWf (dWo does not use dc)",
        "dc = dc_next + dh * o", "dc = dh * o",
        _backward("dWf", SECOND_LAST)),
    # --- the step forward ``lstm``: isolated forward, step 0, at the first wrong tensor ---
    Bug("output_gate_tanh",
        "the output gate uses tanh instead of sigmoid",
        "np.tanh(g_pre), sigmoid(o_pre)", "np.tanh(g_pre), np.tanh(o_pre)",
        _forward("o")),
    Bug("h_without_tanh",
        "h = o * c, without the tanh of the cell state",
        "h = o * c_tanh", "h = o * c",
        _forward("h")),
    Bug("cell_update_missing_input_gate",
        "the cell update adds g without the input gate: c = f * c_prev + g",
        "c = f * c_prev + i * g", "c = f * c_prev + g",
        _forward("c")),
    Bug("input_pre_uses_forget_weights",
        "the input gate's pre-activation uses the forget gate's weights Wf",
        'i_pre = xh @ params["Wi"]', 'i_pre = xh @ params["Wf"]',
        _forward("i_pre")),
    # --- the person's own loop: sequence mode only (the step functions are right) ---
    Bug("sequence_loop_runs_forward",
        "dlstm_loss walks the steps forward instead of in reverse; dWy and dby are sums of per-step terms "
        "that do not depend on the order, so the first total it changes is dWo",
        "reversed(list(zip(outputs, targets, caches)))", "list(zip(outputs, targets, caches))",
        _sequence("backward", "dWo")),
    Bug("backward_state_not_carried",
        "dlstm_loss drops the dh_prev, dc_prev that dlstm returns, so every step gets zeros; dWy and dby do "
        "not depend on them, so the first total it changes is dWo",
        "step, dh, dc = dlstm(params, dy, dh, dc, cache)", "step, _, _ = dlstm(params, dy, dh, dc, cache)",
        _sequence("backward", "dWo")),
    Bug("dparams_overwritten",
        "dlstm_loss overwrites dparams with each step's contribution instead of accumulating; only step 0's "
        "is left, and dWy is the first total",
        "dparams[name] += value", "dparams[name] = value",
        _sequence("backward", "dWy")),
    Bug("dy_missing_mean_over_outputs",
        "dlstm_loss uses dy = 2 * (y - target) without the / O of the mean over outputs; the question's own "
        "mistake, identical when O = 1, so it runs with two outputs",
        "dy = 2 * (y - target) / y.shape[-1]", "dy = 2 * (y - target)",
        _sequence("backward", "dWy"), MANY_OUTPUTS),
    Bug("forward_state_not_carried",
        "lstm_loss keeps feeding the initial h, c to every step instead of the state each step returns; "
        "step 0 is right, so y first diverges at step 1",
        "y, h, c, cache = lstm(params, x, h, c)", "y, _, _, cache = lstm(params, x, h, c)",
        _sequence("forward", "y", 1)),
    Bug("loss_missing_mean_over_outputs",
        "lstm_loss sums the squared errors over outputs instead of taking their mean; identical when O = 1, "
        "so it runs with two outputs (every per-step y still matches)",
        "np.sum(np.mean((y - target) ** 2, axis=-1))", "np.sum((y - target) ** 2)",
        _sequence("forward", "loss"), MANY_OUTPUTS),
)
