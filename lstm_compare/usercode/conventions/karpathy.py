"""Karpathy's batched-LSTM gist: one matrix with a bias row, blocks i, f, o, g, whole-sequence functions only.

    class LSTM:
        init(input_size, hidden_size, ...) -> WLSTM               (1 + input_size + hidden_size, 4 hidden_size)
        forward(X, WLSTM, c0=None, h0=None) -> (Hout, c_last, h_last, cache)        X (n, b, input_size)
        backward(dHout, cache, dcn=None, dhn=None) -> (dX, dWLSTM, dc0, dh0)

``Hin[t] = [1, x_t, h_prev]`` and ``IFOG[t] = Hin[t] @ WLSTM``: row 0 of WLSTM is the bias.  The step modes run
``forward``/``backward`` on one-step slices, fed the state and the incoming gradients (c0, h0, dcn, dhn); the
gates are read from the cache's ``IFOG`` (pre-activations) and ``IFOGf`` (activations).
"""

import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import Binding, StepForward, accepts
from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import unpack

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem

IFOG = ("i", "f", "o", "g")
NAMES = ("LSTM",)
SIGNATURES = {"forward": ("forward(X, WLSTM, c0, h0)", 4), "backward": ("backward(dHout, cache, dcn, dhn)", 4)}


def detect(module: ModuleType) -> str | None:
    lstm = getattr(module, "LSTM", None)
    if isinstance(lstm, type) and all(callable(getattr(lstm, f, None)) for f in SIGNATURES):
        return "it defines a class LSTM with forward and backward (Karpathy's batched-LSTM gist)"
    return None


class Karpathy(Binding):
    convention = "karpathy"
    layout = (Matrix("WLSTM", ("1", "x", "h"), IFOG),)
    sequence_functions = "LSTM.forward and LSTM.backward"
    step_functions = "LSTM.forward/LSTM.backward on one-step slices"
    vector_names = {"h": "h_last", "c": "c_last", "dx": "dX", "dh_prev": "dh0", "dc_prev": "dc0"}
    sequence_names = {"h": "Hout", "dx": "dX"}

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        super().__init__(module, name, source)
        lstm = getattr(module, "LSTM", None)
        if not isinstance(lstm, type):
            raise UsageError(f"{name} has no class LSTM, which the karpathy convention requires.")
        for function, (signature, count) in SIGNATURES.items():
            fn = getattr(lstm, function, None)
            if not callable(fn):
                raise UsageError(f"{name} has no method LSTM.{signature}, which the karpathy convention requires.")
            if not isinstance(inspect.getattr_static(lstm, function), staticmethod) or not accepts(fn, count):
                raise UsageError(f"{name}: LSTM.{function} cannot be called as LSTM.{signature} (it must be a "
                                 f"static method).")
            setattr(self, function, fn)

    @property
    def has_sequence(self) -> bool:
        return True

    def observed_forward(self) -> set[str]:
        return {"f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "h", "cache.xh",
                "cache.c_prev", "cache.c", "cache.h"}

    def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                    ) -> StepForward:
        user = self.user_params(params)
        args = (self.to_sequence(x[None]), user["WLSTM"], self.to_user_vector(c), self.to_user_vector(h))
        Hout, c_last, h_last, cache = unpack(self.call("forward", args, "forward", t), 4, "LSTM.forward")
        what = f"returned by LSTM.forward on step {t}"
        tensors = {"h": self.from_user_vector(h_last, h, f"h_last {what}"),
                   "c": self.from_user_vector(c_last, c, f"c_last {what}")}
        tensors |= self._from_cache(cache, x, h, t)
        return StepForward(tensors, self.head(params, tensors["h"]), tensors["h"], tensors["c"], cache)

    def _from_cache(self, cache: Any, x: np.ndarray, h: np.ndarray, t: int) -> dict[str, np.ndarray]:
        """The gates and the cache's own state, where the cache holds the gist's entries."""
        if not isinstance(cache, dict):
            return {}
        H = h.shape[-1]
        what = f"in the cache of LSTM.forward on step {t}"
        out: dict[str, np.ndarray] = {}
        for key, suffix in (("IFOG", "_pre"), ("IFOGf", "")):
            if key in cache:
                fused = self.from_user_vector(np.asarray(cache[key])[0], np.zeros((*h.shape[:-1], 4 * H)),
                                              f"{key} {what}")
                out |= {f"{g}{suffix}": fused[..., k * H:(k + 1) * H] for k, g in enumerate(IFOG)}
        single = {"Ct": "c_tanh", "C": "cache.c", "Hout": "cache.h"}
        for key, name in single.items():
            if key in cache:
                out[name] = self.from_user_vector(np.asarray(cache[key])[0], h, f"{key} {what}")
        if "c0" in cache:
            out["cache.c_prev"] = self.from_user_vector(cache["c0"], h, f"c0 {what}")
        if "Hin" in cache:
            hin = np.zeros((*h.shape[:-1], 1 + x.shape[-1] + H))
            out["cache.xh"] = self.from_user_vector(np.asarray(cache["Hin"])[0], hin, f"Hin {what}")[..., 1:]
        return out

    def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
                      cache: Any, t: int) -> dict[str, np.ndarray]:
        dHout = self.to_sequence(self.head_backward(params, dy)[None])
        args = (dHout, cache, self.to_user_vector(dc_next), self.to_user_vector(dh_next))
        dX, dWLSTM, dc0, dh0 = unpack(self.call("backward", args, "backward", t), 4, "LSTM.backward")
        what = f"returned by LSTM.backward on step {t}"
        out = self.grads_to_internal(self.check_user_grads({"WLSTM": dWLSTM}, params, what), params)
        out["dx"] = self.from_sequence(dX, self.x_like(params, dh_next)[None], f"dX {what}")[0]
        out["dh_prev"] = self.from_user_vector(dh0, dh_next, f"dh0 {what}")
        out["dc_prev"] = self.from_user_vector(dc0, dc_next, f"dc0 {what}")
        return out

    def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
        user = self.user_params(problem.params)
        args = (self.to_sequence(problem.inputs), user["WLSTM"], self.to_user_vector(problem.c0),
                self.to_user_vector(problem.h0))
        Hout, c_last, h_last, cache = unpack(self.call("forward", args, "forward", None), 4, "LSTM.forward")
        what = "returned by LSTM.forward"
        return {"h": self.from_sequence(Hout, self.states_like(problem), f"Hout {what}"),
                "h_last": self.from_user_vector(h_last, problem.h0, f"its third value (the last h) {what}"),
                "c_last": self.from_user_vector(c_last, problem.c0, f"its second value (the last c) {what}")}, cache

    def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
        dh = self.output_dh(problem, forward["h"])
        result = self.call("backward", (self.to_sequence(dh), kept), "backward", None)
        dX, dWLSTM, dc0, dh0 = unpack(result, 4, "LSTM.backward")
        what = "returned by LSTM.backward"
        out = self.grads_to_internal(self.check_user_grads({"WLSTM": dWLSTM}, problem.params, what), problem.params)
        out["dx"] = self.from_sequence(dX, problem.inputs, f"dX {what}")
        out["dh0"] = self.from_user_vector(dh0, problem.h0, f"dh0 {what}")
        out["dc0"] = self.from_user_vector(dc0, problem.c0, f"dc0 {what}")
        return out
