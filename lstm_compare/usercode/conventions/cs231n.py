"""Stanford cs231n's ``rnn_layers.py``: fused 4H blocks ordered i, f, o, g, batched rows, no head.

    lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache)       x (N, D)
    lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)
    lstm_forward(x, h0, Wx, Wh, b) -> (h, cache)          optional: x (N, T, D), h (N, T, H), c0 = 0
    lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)   dh: the gradients reaching h from the outputs

``a = x @ Wx + prev_h @ Wh + b`` with Wx (D, 4H), Wh (H, 4H), b (4H,).  The cache is free-form, so the gates
are observed by saturating the others through the bias (``Binding.observe_by_saturation``).
"""

from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import Binding, StepForward, defines
from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.usercode.guard import unpack

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem

IFOG = ("i", "f", "o", "g")
NAMES = ("lstm_step_forward", "lstm_step_backward")
REQUIRED = (("lstm_step_forward", "lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)"),
            ("lstm_step_backward", "lstm_step_backward(dnext_h, dnext_c, cache)"))
SEQUENCE = (("lstm_forward", "lstm_forward(x, h0, Wx, Wh, b)"), ("lstm_backward", "lstm_backward(dh, cache)"))


def detect(module: ModuleType) -> str | None:
    if defines(module, NAMES):
        return "it defines lstm_step_forward and lstm_step_backward (cs231n's rnn_layers.py)"
    return None


class Cs231n(Binding):
    convention = "cs231n"
    layout = (Matrix("Wx", ("x",), IFOG), Matrix("Wh", ("h",), IFOG), Matrix("b", ("1",), IFOG, vector=True))
    sequence_zero_c0 = True
    sequence_axes = "NTn"
    vector_names = {"h": "next_h", "c": "next_c", "dh_prev": "dprev_h", "dc_prev": "dprev_c"}
    sequence_names = {"h": "h", "dx": "dx"}
    sequence_functions = "lstm_forward and lstm_backward"
    step_functions = "lstm_step_forward/lstm_step_backward"

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        super().__init__(module, name, source)
        self.bind_functions(REQUIRED, SEQUENCE)

    def observed_forward(self) -> set[str]:
        return {"f", "i", "g", "o", "c", "h"}

    def _forward(self, user: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                ) -> tuple[np.ndarray, np.ndarray, Any]:
        """One call of lstm_step_forward on internal vectors: (next_h, next_c, cache), checked."""
        args = (self.to_user_vector(x), self.to_user_vector(h), self.to_user_vector(c), user["Wx"], user["Wh"],
                user["b"])
        next_h, next_c, cache = unpack(self.call("lstm_step_forward", args, "forward", t), 3, "lstm_step_forward")
        next_h = self.from_user_vector(next_h, h, f"next_h returned by lstm_step_forward at step {t}")
        next_c = self.from_user_vector(next_c, c, f"next_c returned by lstm_step_forward at step {t}")
        return next_h, next_c, cache

    def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                    ) -> StepForward:
        next_h, next_c, cache = self._forward(self.user_params(params), x, h, c, t)
        gates = self.observe_by_saturation(params, lambda user, *a: self._forward(user, *a)[:2], x, h, c, t,
                                           (next_h, next_c))
        tensors = {**gates, "c": next_c, "h": next_h}
        return StepForward(tensors, self.head(params, next_h), next_h, next_c, cache)

    def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
                      cache: Any, t: int) -> dict[str, np.ndarray]:
        dnext_h = self.head_backward(params, dy) + dh_next
        args = (self.to_user_vector(dnext_h), self.to_user_vector(dc_next), cache)
        result = unpack(self.call("lstm_step_backward", args, "backward", t), 6, "lstm_step_backward")
        dx, dprev_h, dprev_c, *grads = result
        what = f"returned by lstm_step_backward at step {t}"
        out = self.grads_to_internal(self.check_user_grads(dict(zip(("Wx", "Wh", "b"), grads)), params, what),
                                     params)
        out["dx"] = self.from_user_vector(dx, self.x_like(params, dh_next), f"dx {what}")
        out["dh_prev"] = self.from_user_vector(dprev_h, dh_next, f"dprev_h {what}")
        out["dc_prev"] = self.from_user_vector(dprev_c, dc_next, f"dprev_c {what}")
        return out

    def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
        user = self.user_params(problem.params)
        x = self.to_sequence(problem.inputs)  # (N, T, D)
        result = self.call("lstm_forward", (x, self.to_user_vector(problem.h0), user["Wx"], user["Wh"], user["b"]),
                           "forward", None)
        h, cache = unpack(result, 2, "lstm_forward")
        return {"h": self.from_sequence(h, self.states_like(problem), "h returned by lstm_forward")}, cache

    def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
        dh = self.output_dh(problem, forward["h"])
        result = self.call("lstm_backward", (self.to_sequence(dh), kept), "backward", None)
        dx, dh0, *grads = unpack(result, 5, "lstm_backward")
        out = self.grads_to_internal(self.check_user_grads(dict(zip(("Wx", "Wh", "b"), grads)), problem.params,
                                                           "returned by lstm_backward"), problem.params)
        out["dx"] = self.from_sequence(dx, problem.inputs, "dx returned by lstm_backward")
        out["dh0"] = self.from_user_vector(dh0, problem.h0, "dh0 returned by lstm_backward")
        return out
