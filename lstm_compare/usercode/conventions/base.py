"""What every convention offers the engine, and the pieces conventions share.

A ``Binding`` ties one user file to the internal layout: it calls the user's step forward and backward (and its
whole-sequence functions, if any) on internal tensors and returns internal tensors, named with the cell
description's vocabulary (``references/cell.py``).  The engine never learns which convention it got.

Conventions without the question's dense head leave the head and the loss to the harness: their step backward
gets dL/dh_t = dy_t @ Wy.T + dh_next, the same signal the question's ``dlstm`` builds itself.
"""

import copy
import inspect
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeAlias

import numpy as np

from lstm_compare.usercode.conventions.layout import Sizes, to_internal, to_user, user_shape
from lstm_compare.usercode.conventions.naming import Naming
from lstm_compare.lstm.where import Phase
from lstm_compare.errors import ImplementationRaised, PerExampleGradients, UsageError
from lstm_compare.usercode.module_state import ModuleState, left_as_it_was, mutable_globals
from lstm_compare.usercode.guard import as_float_array, call, read_only
from lstm_compare.lstm.cell import BACKWARD_ORDER, FORWARD_ORDER, GATE_PARAM_GRADS, GATES

if TYPE_CHECKING:
    from os import PathLike

    from lstm_compare.usercode.conventions.layout import Matrix
    from lstm_compare.lstm.problem import ProblemSpec
    from lstm_compare.lstm.records import Problem

# Gates a cache does not name are observed by saturating the other gates through their biases.
# 30 (plus the pre-activation's own part): sigmoid(-30) = 9e-14 and 1 - tanh(30) = 0 in float64, while exp(2 * 30)
# and a little more stays finite in float32, so code that writes tanh or sigmoid as a ratio of exponentials holds.
SATURATED = 30.0
# Gates read off that way are compared with this relative slack on top of the dtype's tolerance: code that clips
# its pre-activations (to +-15, say) cannot saturate fully.  They serve to locate a bug; c and h, compared
# exactly, detect it.
PROBE_RTOL = 1e-5


@dataclass(frozen=True)
class StepForward:
    """One forward step as the engine sees it."""

    tensors: dict[str, np.ndarray]  # internal name -> ([B,] n): what is compared (gates, c, h, y, cache.*)
    y: np.ndarray  # ([B,] O): the output, the user's own or the harness's head on the user's h
    h: np.ndarray
    c: np.ndarray
    cache: Any  # exactly what the user's forward returned, for its backward


@dataclass(frozen=True)
class SequenceRun:
    """What the user's whole-sequence functions returned, in internal names.

    ``forward``: per-step tensors (T, [B,] n) such as ``y`` or ``h`` and ``c``, and ``loss`` (a float) when the
    code computes one; ``backward``: per-step ``dx`` (T, [B,] X) and whole-sequence totals (``dWf``, ...,
    ``dh0``, ``dc0``).  ``failure`` is the exception that stopped it, if any.
    """

    forward: dict[str, Any]  # arrays, and the loss as a float
    backward: dict[str, np.ndarray]
    failure: ImplementationRaised | None


class Binding:
    """The base of every convention: the user's module, its name, and the shared helpers."""

    convention = ""
    has_head = False  # the question's convention: the user computes y, gets dy and returns dWy, dby
    layout: tuple["Matrix", ...] = ()  # the user's parameters (layout.Matrix)
    head_layout: tuple["Matrix", ...] = ()  # head parameters the user's forward takes but never differentiates
    returns_dx = True  # the step backward returns dL/dx_t
    columns = False  # vectors are columns (n, B) instead of rows (B, n)
    sequence_zero_c0 = False  # the whole-sequence forward takes no initial cell state
    sequence_functions = ""  # what enables the sequence mode, in words
    step_functions = ""  # what the step modes call, in words

    vector_names: dict[str, str] = {}  # internal per-step tensor -> the user's name for it
    # internal per-step tensor -> the user's name for the whole-sequence array holding it
    sequence_names: dict[str, str] = {}
    always_batched = True  # the user's vectors always carry a batch axis (of 1 for single vectors)
    takes_variant_params = False  # the cell reads a params dict by name, so peepholes and a projection can be added

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        self.module, self.name, self.source = module, name, source
        self.notes: tuple[str, ...] = ()  # sentences about how the file was loaded, for the report
        self.state_after_import = mutable_globals(module)  # what each run of its functions starts from
        self.begin_run()

    def fresh_state(self) -> ModuleState:
        """A run's own copy of the module's global state, as it was after import (``module_state``)."""
        return ModuleState(self.module, self.state_after_import)

    def begin_run(self) -> None:
        """Forget what one run learned (the suite runs one binding on many problems)."""
        self.run_notes: tuple[str, ...] = ()  # sentences about how this run went, for the report
        self.probed: set[str] = set()  # gates observed by saturation (compared with PROBE_RTOL of slack)
        self._probing_failed = False
        self.gates_unjudged = False  # gates read off by saturation contradicted c and h: none of them is judged
        # (the internal parameters, them in the user's layout, saturated copies by gate), for the last set seen
        self._params_for: tuple[Mapping[str, np.ndarray], dict[str, np.ndarray],
                                dict[str, dict[str, np.ndarray]]] | None = None

    def naming(self, spec: "ProblemSpec") -> Naming:
        """How this convention names tensors in a problem of ``spec``'s sizes (a small record, kept in reports)."""
        sizes = Sizes(spec.inputs, spec.hidden, spec.outputs)
        return Naming(self.convention, self.layout, dict(self.vector_names), self.columns, self.always_batched, sizes,
                      dict(self.sequence_names), self.sequence_axes, frozenset(self.probed))

    # --- the user's functions ---
    label = ""  # how messages name the convention: "the <label> convention"
    _sequence = False

    def bind_functions(self, required: Sequence[tuple[str, str]],
                       sequence: Sequence[tuple[str, str]] = ()) -> None:
        """Take the user's functions onto this binding, where ``guard.call`` finds them by name: every one of
        ``required`` ((attribute, signature) pairs) must be there, the ``sequence`` ones only all together."""
        require(self.module, self.name, required, self.label or self.convention)
        wanted = list(required)
        if sequence and defines(self.module, [attribute for attribute, _ in sequence]):
            require(self.module, self.name, sequence, self.label or self.convention)
            wanted += sequence
            self._sequence = True
        for attribute, _ in wanted:
            setattr(self, attribute, getattr(self.module, attribute))

    # --- what the engine reads ---
    @property
    def has_sequence(self) -> bool:
        return self._sequence

    @property
    def forward_names(self) -> tuple[str, ...]:
        """The forward tensors this binding compares, in computation order."""
        observed = self.observed_forward()
        return tuple(name for name in FORWARD_ORDER if name in observed)

    def observed_forward(self) -> set[str]:
        raise NotImplementedError

    @property
    def backward_names(self) -> tuple[str, ...]:
        """The per-step backward tensors this binding compares, in computation order."""
        names = set(GATE_PARAM_GRADS) | {"dh_prev", "dc_prev"}
        names |= {"dWy", "dby"} if self.has_head else set()
        names |= {"dx"} if self.returns_dx else set()
        return tuple(name for name in BACKWARD_ORDER if name in names)

    def with_layout(self, layout: tuple["Matrix", ...]) -> "Binding":
        """A copy of this binding that reads the user's parameters in ``layout`` instead (what ``detect`` tries)."""
        trial = copy.copy(self)
        trial.layout, trial._params_for = layout, None
        return trial

    # --- parameters in the user's layout, converted once per problem ---
    def user_params(self, params: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """The internal ``params`` in the user's layout (read-only, shared), converted once per parameter set."""
        if self._params_for is None or self._params_for[0] is not params:
            user = {k: read_only(v) for k, v in to_user(self.layout + self.head_layout, params).items()}
            self._params_for = (params, user, {})
        return self._params_for[1]

    def saturated_params(self, params: Mapping[str, np.ndarray], gate: str) -> dict[str, np.ndarray]:
        """User parameters with every gate but ``gate`` saturated so that next_c / next_h expose ``gate``."""
        Binding.user_params(self, params)  # the cache of converted parameters, whatever a subclass does
        probes = self._params_for[2]  # type: ignore[index]  # set by user_params just above
        if gate not in probes:
            biases = dict(SATURATION[gate])
            changed = dict(params)
            for k, value in biases.items():
                changed[f"b{k}"] = np.full_like(params[f"b{k}"], value * SATURATED)
            probes[gate] = {k: read_only(v) for k, v in to_user(self.layout + self.head_layout, changed).items()}
        return probes[gate]

    def grads_to_internal(self, grads: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray]
                         ) -> dict[str, np.ndarray]:
        """The user's parameter gradients (keyed by matrix name) in internal names: {dWf: ..., ...}."""
        return {f"d{name}": value for name, value in to_internal(self.layout, grads, Sizes.of(params)).items()}

    def check_user_grads(self, grads: Mapping[str, Any], params: Mapping[str, np.ndarray], what: str
                        ) -> dict[str, np.ndarray]:
        """Each user gradient checked against its parameter's shape (UsageError otherwise)."""
        sizes = Sizes.of(params)
        return {m.name: gradient_array(grads[m.name], user_shape(m, sizes), f"d{m.name} {what}")
                for m in self.layout}

    @staticmethod
    def states_like(problem: "Problem") -> np.ndarray:
        """A (T, [B,] H) array shaped like the per-step states of ``problem``."""
        return np.broadcast_to(problem.h0, (problem.steps, *problem.h0.shape))

    @staticmethod
    def x_like(params: Mapping[str, np.ndarray], h: np.ndarray) -> np.ndarray:
        """A zero internal x shaped like ``h``'s batch (the shape a returned dx must have)."""
        return np.zeros((*h.shape[:-1], params["Wf"].shape[0] - h.shape[-1]), h.dtype)

    # --- vectors: internal ([B,] n) <-> the user's (N, n) rows or (n, N) columns ---
    def to_user_vector(self, v: np.ndarray) -> np.ndarray:
        rows = v[None] if v.ndim == 1 else v
        return np.ascontiguousarray(rows.T) if self.columns else rows

    def from_user_vector(self, u: Any, like: np.ndarray, what: str) -> np.ndarray:
        """The user's vector back in internal shape (checked: floating point, the shape ``like`` implies)."""
        rows = like[None] if like.ndim == 1 else like
        shape = rows.shape[::-1] if self.columns else rows.shape
        u = as_float_array(u, shape, what)
        u = u.T if self.columns else u
        return u[0] if like.ndim == 1 else u

    # --- sequences: internal (T, [B,] n) <-> the user's axes, e.g. "NTn" for (N, T, n) ---
    sequence_axes = "TNn"

    def to_sequence(self, values: np.ndarray) -> np.ndarray:
        rows = values[:, None] if values.ndim == 2 else values  # (T, N, n)
        return np.ascontiguousarray(np.transpose(rows, ["TNn".index(a) for a in self.sequence_axes]))

    def from_sequence(self, value: Any, like: np.ndarray, what: str) -> np.ndarray:
        """The user's whole-sequence array back in internal (T, [B,] n), checked against ``like``'s shape."""
        rows = like[:, None] if like.ndim == 2 else like  # (T, N, n)
        order = ["TNn".index(a) for a in self.sequence_axes]
        value = as_float_array(value, tuple(rows.shape[k] for k in order), what)
        out = np.transpose(value, np.argsort(order))
        return out[:, 0] if like.ndim == 2 else out

    # --- the harness-owned head (conventions without one) ---
    @staticmethod
    def head(params: Mapping[str, np.ndarray], h: np.ndarray) -> np.ndarray:
        return h @ params["Wy"] + params["by"]

    @staticmethod
    def head_backward(params: Mapping[str, np.ndarray], dy: np.ndarray) -> np.ndarray:
        return dy @ params["Wy"].T

    def output_dh(self, problem: "Problem", h: np.ndarray) -> np.ndarray:
        """dL/dh_t from the outputs alone, for every step: the harness's head and loss on the user's h (T, [B,] H)."""
        return self.head_backward(problem.params, problem.output_gradient(self.head(problem.params, h)))

    def call(self, function: str, args: tuple[Any, ...], phase: Phase, step: int | None) -> Any:
        return call(self, function, args, phase, step)

    if TYPE_CHECKING:  # what every convention defines (the engine calls these)
        def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray,
                         t: int) -> StepForward: ...

        def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray,
                          dc_next: np.ndarray, cache: Any, t: int) -> dict[str, np.ndarray]: ...

        def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
            """The user's whole-sequence forward: (what it returned in internal names, what its backward needs)."""

        def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
            """The user's whole-sequence backward on ``forward`` and ``kept``: gradients in internal names."""

    def sequence(self, problem: "Problem") -> SequenceRun:
        """The user's whole-sequence functions, the forward then the backward; an exception in either is where it
        stops (what came before is still compared)."""
        try:
            forward, kept = self.sequence_forward(problem)
        except ImplementationRaised as raised:
            return SequenceRun({}, {}, raised)
        try:
            backward = self.sequence_backward(problem, forward, kept)
        except ImplementationRaised as raised:
            return SequenceRun(forward, {}, raised)
        return SequenceRun(forward, backward, None)

    def probe_contradicted(self) -> None:
        """The gates read off by saturation disagree with this file's own c and h: say so, and read no more."""
        if not self._probing_failed:
            self.run_notes = (*self.run_notes, f"the gates of {self.name} read off with the other gates saturated "
                                               f"do not give back its own c and h (it may clip or bound its "
                                               f"pre-activations), so its gates are not judged; c and h locate "
                                               f"forward bugs.")
        self._probing_failed = self.gates_unjudged = True
        self.probed.clear()

    def observe_by_saturation(self, params: Mapping[str, np.ndarray],
                              forward: Callable[..., tuple[np.ndarray, np.ndarray]], x: np.ndarray, h: np.ndarray,
                              c: np.ndarray, t: int, states: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
        """Each gate's activation, read off ``forward(user_params, x, h, c) -> (next_h, next_c)`` with the other
        gates saturated: f = next_c when i = 0 and c_prev = 1; i = next_c when f = 0, g = 1; g = next_c when
        f = 0, i = 1; o = next_h / tanh(1) when f = 0, i = g = 1 (so c = 1).

        Read so, the gates must give back the file's own ``states`` (next_h, next_c of the same step): c = f c_prev
        + i g and h = o tanh(c).  Where they do not (a file that clips or bounds its pre-activations cannot
        saturate), its gates are not read, nor judged, from then on (``probe_contradicted``)."""
        if self._probing_failed:
            return {}
        gates = {}
        ones = np.ones_like(c)
        try:
            with np.errstate(all="ignore"), left_as_it_was(self.module):
                for gate in GATES:
                    next_h, next_c = forward(self.saturated_params(params, gate), x, h, ones if gate == "f" else c, t)
                    gates[gate] = next_h / np.tanh(np.asarray(1.0, next_h.dtype)) if gate == "o" else next_c
                    if not np.isfinite(gates[gate]).all():
                        raise ValueError(f"a NaN or Inf came back for gate {gate}")
        except (ImplementationRaised, UsageError, ValueError) as error:
            self._probing_failed = True
            self.probed.clear()
            reason = error.message if isinstance(error, ImplementationRaised) else str(error)
            self.run_notes = (*self.run_notes, f"the gates of {self.name} could not be read off with the other gates "
                                       f"saturated from forward step {t} on ({reason.rstrip('.')}); there c and h "
                                       f"locate forward bugs.")
            return {}
        if not _consistent(gates, c, *states):
            self.probe_contradicted()
            return {}
        self.probed |= set(gates)
        return gates


def _consistent(gates: Mapping[str, np.ndarray], c_prev: np.ndarray, next_h: np.ndarray, next_c: np.ndarray) -> bool:
    """Whether gates read off by saturation give back the step's own c = f c_prev + i g and h = o tanh(c), within
    the slack a probe is allowed (``PROBE_RTOL``)."""
    f, i, g, o = (np.asarray(gates[k], dtype=np.float64) for k in "figo")
    c = np.asarray(next_c, dtype=np.float64)
    c_hat, h_hat = f * c_prev + i * g, o * np.tanh(c)
    if next_h.shape != h_hat.shape:  # a projected h: only c can be checked
        return bool(np.all(np.abs(c_hat - c) <= PROBE_RTOL * max(1.0, float(np.max(np.abs(c), initial=0)))))
    h = np.asarray(next_h, dtype=np.float64)
    return bool(np.all(np.abs(c_hat - c) <= PROBE_RTOL * max(1.0, float(np.max(np.abs(c), initial=0))))
                and np.all(np.abs(h_hat - h) <= PROBE_RTOL * max(1.0, float(np.max(np.abs(h), initial=0)))))


# Biases (in units of SATURATED) that expose one gate through next_c or next_h.
SATURATION = {"f": {"i": -1, "o": 1}, "i": {"f": -1, "g": 1, "o": 1}, "g": {"f": -1, "i": 1, "o": 1},
              "o": {"f": -1, "i": 1, "g": 1}}


def gradient_array(value: Any, shape: Sequence[int], what: str) -> np.ndarray:
    """A parameter gradient checked like any array, but a per-example stack (B, *shape) is named as such."""
    got = np.shape(value)
    if len(got) == len(shape) + 1 and tuple(got[1:]) == tuple(shape) and got[0] > 1:  # (1, n): keepdims, not this
        raise PerExampleGradients(f"{what} has shape {got}: one gradient per batch element, where their sum "
                                  f"over the batch, of shape {tuple(shape)}, is required")
    return as_float_array(value, shape, what)


def accepts(fn: Callable[..., Any], count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C function: nothing to check
        return True
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


def defines(module: ModuleType, names: Sequence[str]) -> bool:
    """Whether ``module`` defines a callable for every one of ``names``."""
    return all(callable(getattr(module, name, None)) for name in names)


def require(module: ModuleType, name: str, functions: Sequence[tuple[str, str]], convention: str) -> None:
    """Each (attribute, signature text) of ``functions`` must be callable on ``module`` with that many arguments."""
    for attribute, signature in functions:
        fn = getattr(module, attribute, None)
        if not callable(fn):
            raise UsageError(f"{name} has no function {signature}, which the {convention} convention requires.")
        count = signature.count(",") + 1
        if not accepts(fn, count):
            raise UsageError(f"{name}: {attribute}{inspect.signature(fn)} cannot be called as {signature}.")


# What the harness takes as the code under test: a path to a .py file, a module object, a mapping or namespace of
# the user's functions (a notebook's ``globals()``), or a Binding already made.
Source: TypeAlias = "str | PathLike[str] | ModuleType | Mapping[str, Any] | SimpleNamespace | Binding"
