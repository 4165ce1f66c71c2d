"""deeplearning.ai's "Building your Recurrent Neural Network - Step by Step": column vectors, ``W @ [a; x]``.

    lstm_cell_forward(xt, a_prev, c_prev, parameters) -> (a_next, c_next, yt_pred, cache)      xt (n_x, m)
    lstm_cell_backward(da_next, dc_next, cache) -> gradients    dict: dxt, da_prev, dc_prev, dWf ... dbo
    lstm_forward(x, a0, parameters) -> (a, y, c, caches)        optional: x (n_x, m, T_x), c0 = 0
    lstm_backward(da, caches) -> gradients                      dict: dx, da0, dWf ... dbo

``parameters``: ``Wf, Wi, Wc, Wo`` (n_a, n_a + n_x) acting on ``concat = [a_prev; xt]`` from the left, ``bf, bi,
bc, bo`` (n_a, 1), and the softmax head ``Wy`` (n_y, n_a), ``by`` (n_y, 1), which its forward applies but nothing
differentiates (``yt_pred`` is not compared; the harness owns the loss).  The cache is fixed:
``(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``, so the gates are read from it.
"""

from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import Binding, StepForward, defines
from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import unpack

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem

GATE_LETTERS = {"f": "f", "i": "i", "g": "c", "o": "o"}  # internal gate -> the notebook's letter (c: candidate)
NAMES = ("lstm_cell_forward", "lstm_cell_backward")
REQUIRED = (("lstm_cell_forward", "lstm_cell_forward(xt, a_prev, c_prev, parameters)"),
            ("lstm_cell_backward", "lstm_cell_backward(da_next, dc_next, cache)"))
SEQUENCE = (("lstm_forward", "lstm_forward(x, a0, parameters)"), ("lstm_backward", "lstm_backward(da, caches)"))
CACHE = {"cache.h": 0, "cache.c": 1, "cache.c_prev": 3, "f": 4, "i": 5, "g": 6, "o": 7}  # positions in the cache


def detect(module: ModuleType) -> str | None:
    if defines(module, NAMES):
        return "it defines lstm_cell_forward and lstm_cell_backward (deeplearning.ai's step-by-step notebook)"
    return None


class Coursera(Binding):
    convention = "coursera"
    columns = True
    layout = tuple(Matrix(f"W{c}", ("h", "x"), g, left=True) for g, c in GATE_LETTERS.items()) \
        + tuple(Matrix(f"b{c}", ("1",), g, left=True) for g, c in GATE_LETTERS.items())
    head_layout = (Matrix("Wy", ("h",), "y", left=True), Matrix("by", ("1",), "y", left=True))
    sequence_zero_c0 = True
    sequence_axes = "nNT"
    vector_names = {"h": "a_next", "c": "c_next", "f": "ft", "i": "it", "g": "cct", "o": "ot", "cache.h": "cache[0]",
                    "cache.c": "cache[1]", "cache.c_prev": "cache[3]", "dx": "dxt", "dh_prev": "da_prev", "dh0": "da0"}
    sequence_names = {"h": "a", "c": "c", "dx": "dx"}
    sequence_functions = "lstm_forward and lstm_backward"
    step_functions = "lstm_cell_forward/lstm_cell_backward"

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        super().__init__(module, name, source)
        self.bind_functions(REQUIRED, SEQUENCE)

    def observed_forward(self) -> set[str]:
        return {*CACHE, "c", "h"}

    def _forward(self, user: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                ) -> tuple[np.ndarray, np.ndarray, Any]:
        args = (self.to_user_vector(x), self.to_user_vector(h), self.to_user_vector(c), user)
        a_next, c_next, _, cache = unpack(self.call("lstm_cell_forward", args, "forward", t), 4, "lstm_cell_forward")
        a_next = self.from_user_vector(a_next, h, f"a_next returned by lstm_cell_forward at step {t}")
        c_next = self.from_user_vector(c_next, c, f"c_next returned by lstm_cell_forward at step {t}")
        return a_next, c_next, cache

    def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                    ) -> StepForward:
        a_next, c_next, cache = self._forward(self.user_params(params), x, h, c, t)
        tensors = {"c": c_next, "h": a_next}
        cached = self._from_cache(cache, h, t)
        if cached is not None:
            tensors |= cached
        else:  # not the notebook's cache: observe the gates instead
            tensors |= self.observe_by_saturation(params, lambda user, *a: self._forward(user, *a)[:2], x, h, c, t,
                                                  (a_next, c_next))
        return StepForward(tensors, self.head(params, a_next), a_next, c_next, cache)

    def _from_cache(self, cache: Any, h: np.ndarray, t: int) -> dict[str, np.ndarray] | None:
        """The gates and states where the notebook's cache keeps them, or None when the cache is not laid out so:
        another length, or entries that do not satisfy c = f * c_prev + i * g at those places."""
        if not isinstance(cache, (tuple, list)) or len(cache) != 10:
            return None
        try:
            read = {name: self.from_user_vector(cache[k], h, f"cache[{k}] ({name.removeprefix('cache.')}) of "
                                                             f"lstm_cell_forward at step {t}")
                    for name, k in CACHE.items()}
        except UsageError:
            return None
        c = read["f"] * read["cache.c_prev"] + read["i"] * read["g"]
        scale = np.max(np.abs(read["cache.c"]), initial=0.0)
        return read if np.max(np.abs(c - read["cache.c"]), initial=0.0) <= 1e-3 * scale + 1e-6 else None

    def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
                      cache: Any, t: int) -> dict[str, np.ndarray]:
        da_next = self.head_backward(params, dy) + dh_next
        args = (self.to_user_vector(da_next), self.to_user_vector(dc_next), cache)
        gradients = self.call("lstm_cell_backward", args, "backward", t)
        what = f"returned by lstm_cell_backward at step {t}"
        gradients = _gradients(gradients, ("dxt", "da_prev", "dc_prev"), what)
        out = self.grads_to_internal(self.check_user_grads(gradients, params, what), params)
        out["dx"] = self.from_user_vector(gradients["dxt"], self.x_like(params, dh_next), f"dxt {what}")
        out["dh_prev"] = self.from_user_vector(gradients["da_prev"], dh_next, f"da_prev {what}")
        out["dc_prev"] = self.from_user_vector(gradients["dc_prev"], dc_next, f"dc_prev {what}")
        return out

    def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
        user = self.user_params(problem.params)
        args = (self.to_sequence(problem.inputs), self.to_user_vector(problem.h0), user)
        a, _, c, caches = unpack(self.call("lstm_forward", args, "forward", None), 4, "lstm_forward")
        like = self.states_like(problem)
        return {"h": self.from_sequence(a, like, "a returned by lstm_forward"),
                "c": self.from_sequence(c, like, "c returned by lstm_forward")}, caches

    def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
        da = self.output_dh(problem, forward["h"])
        gradients = self.call("lstm_backward", (self.to_sequence(da), kept), "backward", None)
        what = "returned by lstm_backward"
        gradients = _gradients(gradients, ("dx", "da0"), what)
        out = self.grads_to_internal(self.check_user_grads(gradients, problem.params, what), problem.params)
        out["dx"] = self.from_sequence(gradients["dx"], problem.inputs, f"dx {what}")
        out["dh0"] = self.from_user_vector(gradients["da0"], problem.h0, f"da0 {what}")
        return out

    def check_user_grads(self, grads: Mapping[str, Any], params: Mapping[str, np.ndarray], what: str
                        ) -> dict[str, np.ndarray]:
        return super().check_user_grads({m.name: grads[f"d{m.name}"] for m in self.layout}, params, what)


def _gradients(gradients: Any, extra: tuple[str, ...], what: str) -> dict[str, Any]:
    """The notebook's gradients dict, checked for its keys."""
    if not isinstance(gradients, dict):
        raise UsageError(f"the gradients {what} are a {type(gradients).__name__}; a dict is required.")
    wanted = (*extra, *(f"d{p}{c}" for p in "Wb" for c in GATE_LETTERS.values()))
    missing = [key for key in wanted if key not in gradients]
    if missing:
        raise UsageError(f"the gradients dict {what} has no entry {missing[0]!r}.")
    return gradients
