"""The question's own convention: ``lstm``/``dlstm`` on 1-D vectors or (B, X) batches.

    lstm(params, inp, h_old, c_old) -> (y, h, c, cache)
    dlstm(params, dy, dh_next, dc_next, cache) -> (dparams, dh_prev, dc_prev)      dparams: this step's, Wf ... by
    lstm_loss(params, h, c, inputs, targets) -> (y, outputs, loss, h, c, caches)   optional, with dlstm_loss:
    dlstm_loss(params, inputs, targets, outputs, caches) -> dparams                 the sequence mode

``params`` is the internal dict itself (``Wf`` ... ``Wo`` (X+H, H) on ``[x, h]``, biases (H,), ``Wy``, ``by``);
the cache's entries are named by the file's ``CACHE_FIELDS`` (default: the question's order).
"""

from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import Binding, StepForward, defines, gradient_array
from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import as_float_array, unpack
from lstm_compare.lstm.cell import CACHE_CHECKS, CACHE_FROM_CACHE, GATES, QUESTION_CACHE_FIELDS

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem

REQUIRED = (("lstm", "lstm(params, inp, h_old, c_old)"), ("dlstm", "dlstm(params, dy, dh_next, dc_next, cache)"))
SEQUENCE = (("lstm_loss", "lstm_loss(params, h, c, inputs, targets)"),
            ("dlstm_loss", "dlstm_loss(params, inputs, targets, outputs, caches)"))
NAMES = ("lstm", "dlstm")


def detect(module: ModuleType) -> str | None:
    """Why this module follows the question's convention, or None."""
    return "it defines lstm and dlstm" if defines(module, NAMES) else None


class Question(Binding):
    convention = "question"
    has_head = True
    returns_dx = False
    always_batched = False
    takes_variant_params = True  # pf, pi, po and Wr travel in params (references/cell.py)
    sequence_names = {"y": "outputs"}
    sequence_functions = "lstm_loss and dlstm_loss"
    step_functions = "lstm/dlstm"
    layout = tuple(Matrix(f"W{g}", ("x", "h"), g) for g in GATES) + (Matrix("Wy", ("h",), "y"),) \
        + tuple(Matrix(f"b{g}", ("1",), g, vector=True) for g in GATES) + (Matrix("by", ("1",), "y", vector=True),)

    label = "question's"  # as messages name it: "the question's convention"

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        super().__init__(module, name, source)
        self.bind_functions(REQUIRED, SEQUENCE)
        self.cache_fields = _cache_fields(name, module)
        self.declared_fields = hasattr(module, "CACHE_FIELDS")

    def observed_forward(self) -> set[str]:
        checks = {name for name in CACHE_CHECKS if name.removeprefix("cache.") in self.cache_fields}
        return {name for name in CACHE_FROM_CACHE if name in self.cache_fields} | {"c", "h", "y"} | checks

    def user_params(self, params: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        if self.layout is Question.layout:
            return params  # the internal layout is this convention's
        return super().user_params(params)  # a candidate layout (lstm_compare.usercode.detect)

    def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                    ) -> StepForward:
        lead, S, H = h.shape[:-1], h.shape[-1], c.shape[-1]  # S = H but for a projected cell's h
        X, O = x.shape[-1], params["Wy"].shape[-1]
        result = unpack(self.call("lstm", (self.user_params(params), x, h, c), "forward", t), 4, "lstm")
        y, h_next, c_next, cache = result
        tensors = {"y": as_float_array(y, (*lead, O), f"y returned by lstm at step {t}"),
                   "h": as_float_array(h_next, (*lead, S), f"h returned by lstm at step {t}"),
                   "c": as_float_array(c_next, (*lead, H), f"c returned by lstm at step {t}")}
        named = self._named_entries(cache)
        if named is None:  # a cache this harness cannot read: it is still passed to dlstm as it is
            named = {}
            tensors |= self.observe_by_saturation(params, self._states, x, h, c, t, (tensors["h"], tensors["c"]))
        for name in self.forward_names:
            field = name.removeprefix("cache.")
            if name in tensors or field not in named:
                continue
            shape = {"cache.xh": (*lead, X + S), "cache.h": (*lead, S)}.get(name, (*lead, H))
            what = f"cache entry {field!r} returned by lstm at step {t}"
            tensors[name] = as_float_array(named[field], shape, what)
        return StepForward(tensors, tensors["y"], tensors["h"], tensors["c"], cache)

    def _states(self, user: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """(h, c) of one lstm call with the parameters ``user`` (for observing gates by saturation)."""
        _, h_next, c_next, _ = unpack(self.call("lstm", (user, x, h, c), "forward", t), 4, "lstm")
        return (as_float_array(h_next, h.shape, f"h returned by lstm at step {t}"),
                as_float_array(c_next, c.shape, f"c returned by lstm at step {t}"))

    def _named_entries(self, cache: Any) -> dict[str, Any] | None:
        """The cache's entries by name: a sequence in CACHE_FIELDS order, or a dict keyed by those names; None
        for any other cache (an object, a dataclass, a sequence of another length with no CACHE_FIELDS)."""
        if isinstance(cache, dict):
            return {k: v for k, v in cache.items() if k in self.cache_fields}
        if isinstance(cache, (tuple, list)) and (len(cache) == len(self.cache_fields) or self.declared_fields):
            entries = unpack(cache, len(self.cache_fields),
                             f"lstm's cache (CACHE_FIELDS names {len(self.cache_fields)} entries)")
            return dict(zip(self.cache_fields, entries))
        return None

    def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
                      cache: Any, t: int) -> dict[str, np.ndarray]:
        result = self.call("dlstm", (params, dy, dh_next, dc_next, cache), "backward", t)
        dparams, dh_prev, dc_prev = unpack(result, 3, "dlstm")
        out = param_grads(dparams, params, f"dparams returned by dlstm at step {t}")
        out["dh_prev"] = as_float_array(dh_prev, dh_next.shape, f"dh_prev returned by dlstm at step {t}")
        out["dc_prev"] = as_float_array(dc_prev, dc_next.shape, f"dc_prev returned by dlstm at step {t}")
        return out

    def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
        lead, O = problem.h0.shape[:-1], problem.targets.shape[-1]
        args = (problem.params, problem.h0, problem.c0, problem.inputs, problem.targets)
        _, outputs, loss, h_last, c_last, caches = unpack(self.call("lstm_loss", args, "forward", None), 6,
                                                          "lstm_loss")
        if not isinstance(outputs, (list, tuple, np.ndarray)) or len(outputs) != problem.steps:
            raise UsageError(f"lstm_loss must return the {problem.steps} per-step outputs as its second value.")
        outputs = np.stack([as_float_array(y, (*lead, O), f"output {t} of lstm_loss") for t, y in enumerate(outputs)])
        loss = float(as_float_array(loss, np.shape(loss), "the loss returned by lstm_loss").sum())
        h_last = as_float_array(h_last, problem.h0.shape, "h returned by lstm_loss (the last step's)")
        c_last = as_float_array(c_last, problem.c0.shape, "c returned by lstm_loss (the last step's)")
        return {"y": outputs, "loss": loss, "h_last": h_last, "c_last": c_last}, caches

    def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
        args = (problem.params, problem.inputs, problem.targets, list(forward["y"]), kept)
        dparams = self.call("dlstm_loss", args, "backward", None)
        return param_grads(dparams, problem.params, "dparams returned by dlstm_loss")


def param_grads(dparams: Any, params: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """The user's ``dparams`` dict checked (every parameter, nothing else, right shapes): {dWf: ..., ...}."""
    if not isinstance(dparams, dict):
        raise UsageError(f"{what} is a {type(dparams).__name__}; a dict with keys Wf ... by is required.")
    unknown = sorted(set(dparams) - set(params), key=str)
    if unknown:
        raise UsageError(f"{what} has an entry {unknown[0]!r} that is not a parameter (Wf ... by).")
    out = {}
    for name, value in params.items():
        if name not in dparams:
            raise UsageError(f"{what} has no entry {name!r}.")
        out[f"d{name}"] = gradient_array(dparams[name], value.shape, f"{what}[{name!r}]")
    return out


def _cache_fields(name: str, module: ModuleType) -> tuple[str, ...]:
    fields = getattr(module, "CACHE_FIELDS", QUESTION_CACHE_FIELDS)
    if (not isinstance(fields, (tuple, list)) or not all(isinstance(f, str) for f in fields)
            or len(set(fields)) != len(fields)):
        raise UsageError(f"{name}: CACHE_FIELDS must be a tuple of distinct names (strings), one per cache entry.")
    return tuple(fields)

