"""Declared layouts: a file that follows no built-in convention describes itself in a plain dict, no adapter.

The file defines ``LSTM_COMPARE`` (plain Python: the file needs no import of this project).  For example, column
vectors, ``W @ [h; x]`` with fused blocks ordered i, f, o, g and a (4H, 1) bias::

    LSTM_COMPARE = {
        "step_forward": "step(x, h, c, W, b) -> h, c, cache",
        "step_backward": "step_back(dh, dc, cache) -> dx, dh, dc, dW, db",
        "layout": {"W": "h x | i f o g", "b": "1 | i f o g"},
        "vectors": "columns",
    }

Keys (``layout`` is required, and the step functions or the whole-sequence ones, or both):

- ``step_forward``, ``step_backward``, ``sequence_forward``, ``sequence_backward``: a signature
  ``"name(role, ...) -> role, ..."`` whose words are roles (``ROLES``; ``_`` ignores a returned value).  On the
  left of ``->`` of a backward, ``dh``, ``dc`` are the gradients entering the step (whole-sequence: after its
  last step); on the right, ``dh``, ``dc`` are those leaving it (whole-sequence: dh0, dc0).  A parameter's own
  name passes it; ``params`` passes a dict of them all; ``grads`` returns such a dict (keys ``dW`` or ``W``).  A
  whole-sequence forward without ``c`` starts from c = 0.  Without step functions the step modes run the
  whole-sequence ones on one-step slices, so these must take ``c`` and ``dh``, ``dc``.
- ``layout``: {parameter name: ``"rows | gate blocks"``}.  Rows along the input axis, in order: ``x``, ``h``,
  ``1`` (a bias row); blocks along the output axis: ``f i g o`` in the file's order (``g`` is the candidate),
  or ``y`` for a dense head ``y = h @ Wy + by``.  Every gate's x rows, h rows and bias must appear exactly once.
- ``vectors``: ``"rows"`` (default: x is (batch, X)), ``"columns"`` (x is (X, batch)) or ``"single"`` (x is
  1-D: one sequence, no batch).
- ``biases``: how a bias alone is stored: ``"1d"`` (n,) (the default beside rows and single vectors) or ``"2d"``
  ((1, n) beside rows, (n, 1) beside columns: the default there).
- ``matrices``: ``"right"`` (``x @ W``, stored (in, out); the default for rows and single vectors) or ``"left"``
  (``W @ x``, stored (out, in); the default for columns).
- ``sequence_axes``: the order of the whole-sequence arrays' axes, e.g. ``"NTn"`` for (batch, steps, n);
  default ``"TNn"`` (``"Tn"`` for single vectors).
- ``cache``: {tensor: index or key} where the cache keeps ``f i g o`` (activations), ``f_pre`` ... (pre-
  activations), ``c_tanh``, ``c``, ``h``, ``c_prev``.  Gates it does not keep are observed by saturation.
- ``loss``: None (default: the harness owns the head, the backward gets dL/dh), ``"mse"`` (the file's head:
  its forward returns ``y``, its backward takes ``dy`` and returns the head's gradients, all compared) or
  ``"cross_entropy"`` (softmax cross-entropy with index targets: the backward takes ``target``; see
  ``Declared.step_backward`` for how the harness keeps the comparison exact).
- ``class`` and ``attributes``, for a stateful cell: ``"Cell(X, H)"`` makes one instance per step (or per whole
  sequence), the signatures then name its methods, and ``attributes`` maps roles (``ATTRIBUTE_ROLES``) to the
  attributes the instance keeps them in (``"h"``, or ``"params.W"`` for an entry of a dict attribute).
"""

import inspect
import types
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from lstm_compare.usercode.conventions.base import Binding, StepForward, accepts
from lstm_compare.usercode.conventions.layout import Sizes
from lstm_compare.lstm.where import Phase
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import as_float_array, call, unpack
from lstm_compare.lstm.cell import GATES, output_gradient
from lstm_compare.usercode.conventions.declaration import CACHED, KEPT, _fail, parse

if TYPE_CHECKING:
    from lstm_compare.usercode.conventions.layout import Matrix
    from lstm_compare.lstm.records import Problem


NAMES = ("LSTM_COMPARE",)


def detect(module: ModuleType) -> str | None:
    if hasattr(module, "LSTM_COMPARE"):
        return "it declares its layout in LSTM_COMPARE"
    return None


@dataclass(frozen=True)
class Saved:
    """What a forward step leaves for its backward: the user's cache (or instance) and the step's inputs."""

    cache: object
    instance: object
    x: np.ndarray
    h: np.ndarray
    c: np.ndarray
    y: np.ndarray


class Declared(Binding):
    convention = "declared"

    def __init__(self, module: ModuleType, name: str, source: str | None) -> None:
        super().__init__(module, name, source)
        if not hasattr(module, "LSTM_COMPARE"):
            raise UsageError(f"{name} defines no LSTM_COMPARE, which the declared convention requires.")
        d = self.declaration = parse(module.LSTM_COMPARE)
        self.sig = d.signatures
        # the problem's X, H, O (for a class's constructor), set by each step and sequence before any use
        self._sizes: Sizes = None  # type: ignore[assignment]  # None only until the first step or sequence
        head: Callable[[Matrix], bool] = lambda m: "y" in m.gates  # noqa: E731
        self.has_head = d.loss is not None  # the step forms dL/dh from its own head (hints know dh is not given)
        own = d.loss == "mse"  # the head's gradients are the harness's, so they are compared
        self.layout = tuple(m for m in d.layout if not head(m) or own)
        self.head_layout = tuple(m for m in d.layout if head(m) and not own)
        self.sequence_functions = "sequence_forward and sequence_backward in its LSTM_COMPARE"
        self.columns, self.sequence_axes = d.vectors == "columns", d.sequence_axes
        self.single, self.always_batched = d.vectors == "single", d.vectors != "single"
        backward = self.sig.get("step_backward", self.sig.get("sequence_backward"))  # parse requires one of them
        self.returns_dx = bool({"dx", "dxs"} & {*backward.returns, *d.attributes})  # type: ignore[union-attr]
        self.vector_names = {CACHED[k]: f"cache[{v!r}]" for k, v in d.cache.items()}
        self.vector_names |= {name: f"self.{d.attributes[role]}" for role, (name, returned, key) in KEPT.items()
                              if role in d.attributes and key in self.sig and returned not in self.sig[key].returns}
        if self.has_sequence:
            self.sequence_functions = f"{self.sig['sequence_forward'].function} and " \
                                      f"{self.sig['sequence_backward'].function}"
            takes = set(self.sig["sequence_forward"].args) | set(d.attributes)
            if not {"h", "h_prev"} & takes:
                _fail("sequence_forward", "must take h, the initial hidden state")
            self.sequence_zero_c0 = not {"c", "c_prev"} & takes
        self._check_callables()

    def _check_callables(self) -> None:
        """Every declared function (or method: one more argument, self) exists and takes its roles."""
        cls = self.declaration.cls
        owner: Any = self._class() if cls else self.module  # the class, or the module
        if cls and not accepts(owner, len(cls.args)):
            raise UsageError(f"{self.name}: {cls.function} cannot be constructed as {cls.function}"
                             f"({', '.join(cls.args)}).")
        for key, sig in self.sig.items():
            fn = _resolve(owner, sig.function)
            where = f"{cls.function}.{sig.function}" if cls else sig.function
            if not callable(fn):
                raise UsageError(f"{self.name} has no {where}, which LSTM_COMPARE[{key!r}] declares.")
            if not accepts(fn, len(sig.args) + (1 if cls and inspect.isfunction(fn) else 0)):
                raise UsageError(f"{self.name}: {where} cannot be called as {sig}.")

    def _class(self) -> type:
        # called only where LSTM_COMPARE declares a class (self.declaration.cls is set)
        cls = getattr(self.module, self.declaration.cls.function, None)  # type: ignore[union-attr]
        if not isinstance(cls, type):
            raise UsageError(f"{self.name} has no class {self.declaration.cls.function}, "  # type: ignore[union-attr]
                             f"which LSTM_COMPARE['class'] declares.")
        return cls

    @property
    def has_sequence(self) -> bool:
        return "sequence_forward" in self.sig

    @property
    def backward_names(self) -> tuple[str, ...]:
        """The base's, less the head's gradients of a cross-entropy file (they belong to its own loss)."""
        drop = {"dWy", "dby"} if self.declaration.loss == "cross_entropy" else set()
        return tuple(name for name in super().backward_names if name not in drop)

    def observed_forward(self) -> set[str]:
        names = {"f", "i", "g", "o", "c", "h"} | {CACHED[k] for k in self.declaration.cache}
        forward = self.sig.get("step_forward", self.sig.get("sequence_forward"))  # parse requires one of them
        return names | ({"y"} if {"y", "ys"} & set(forward.returns) else set())  # type: ignore[union-attr]

    # --- vectors and sequences: 'single' passes 1-D vectors and (T, n) or (n, T) sequences as they are ---
    def to_user_vector(self, v: np.ndarray) -> np.ndarray:
        if not self.single:
            return super().to_user_vector(v)
        if v.ndim != 1:
            raise UsageError(f"{self.name} declares single vectors ('vectors': 'single'), so it takes no batch.")
        return v

    def from_user_vector(self, u: Any, like: np.ndarray, what: str) -> np.ndarray:
        return as_float_array(u, like.shape, what) if self.single else super().from_user_vector(u, like, what)

    def to_sequence(self, values: np.ndarray) -> np.ndarray:
        if not self.single:
            return super().to_sequence(values)
        self.to_user_vector(values[0])  # refuses a batch
        return np.ascontiguousarray(values if self.sequence_axes == "Tn" else values.T)

    def from_sequence(self, value: Any, like: np.ndarray, what: str) -> np.ndarray:
        if not self.single:
            return super().from_sequence(value, like, what)
        flip = self.sequence_axes != "Tn"
        value = as_float_array(value, like.shape[::-1] if flip else like.shape, what)
        return value.T if flip else value

    # --- calling the user's code ---
    def _invoke(self, key: str, roles: Mapping[str, Any], phase: Phase, t: int | None, instance: Any = None
               ) -> dict[str, Any]:
        """Call the declared ``key`` with its argument roles filled from ``roles``: {returned role: value}."""
        sig = self.sig[key]
        fn = _resolve(instance if instance is not None else self.module, sig.function)
        label = sig.function.rsplit(".", 1)[-1]
        result = call(types.SimpleNamespace(**{label: fn}, source=self.source), label,
                      tuple(roles[a] for a in sig.args), phase, t)
        if len(sig.returns) == 1:
            result = (result,)
        elif not sig.returns:
            return {}
        values = unpack(result, len(sig.returns), f"{sig.function} (declared as {sig})")
        return {role: value for role, value in zip(sig.returns, values) if role != "_"}

    def _new(self, user: Mapping[str, np.ndarray], h: np.ndarray, c: np.ndarray, phase: Phase, t: int | None) -> Any:
        """A fresh instance of the declared class with the state and the parameters in its attributes."""
        if self.declaration.cls is None:
            return None
        cls, sizes = self.declaration.cls, self._sizes
        shim = types.SimpleNamespace(**{cls.function: self._class()}, source=self.source)
        instance = call(shim, cls.function, tuple(getattr(sizes, a) for a in cls.args), phase, t)
        self._set(instance, {"h_prev": self.to_user_vector(h), "c_prev": self.to_user_vector(c), **user}, phase, t)
        return instance

    def _set(self, instance: Any, values: Mapping[str, Any], phase: Phase, t: int | None) -> None:
        for role, value in values.items():
            if role in self.declaration.attributes:  # a writable copy of its own
                _assign(instance, self.declaration.attributes[role], np.array(value), (phase, t, self.source))

    def _gather(self, out: dict[str, Any], instance: Any, roles: Iterable[str], phase: Phase, t: int | None
                ) -> dict[str, Any]:
        """``out`` completed with the declared attributes of ``instance`` for each of ``roles`` not returned."""
        for role in roles:
            if role not in out and instance is not None and role in self.declaration.attributes:
                out[role] = _lookup(instance, self.declaration.attributes[role], (phase, t, self.source))
        return out

    def _roles(self, user: Mapping[str, np.ndarray], **vectors: np.ndarray) -> dict[str, Any]:
        return {"params": user, **user, **{k: self.to_user_vector(v) for k, v in vectors.items()}}

    # --- the step functions (or, without them, the whole-sequence functions on one-step slices) ---
    @property
    def _steps(self) -> bool:
        return "step_forward" in self.sig

    def _forward(self, user: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict[str, Any], Any]:
        """One step forward: (next_h, next_c, y or None, {returned role: value}, instance), in internal shapes."""
        instance = self._new(user, h, c, "forward", t)
        key = "step_forward" if self._steps else "sequence_forward"
        roles = self._roles(user, x=x, h=h, c=c)
        if not self._steps:
            zeros = np.zeros((*h.shape[:-1], self._sizes.O), h.dtype)
            roles |= {"xs": self.to_sequence(x[None]), "targets": self.to_sequence(zeros[None])}
        out = self._invoke(key, roles, "forward", t, instance)
        what = f"returned by {self.sig[key].function} at step {t}"
        found: dict[str, np.ndarray] = {}
        y_like = np.zeros((*h.shape[:-1], self._sizes.O), h.dtype)
        for name, like, attribute in (("h", h, "h_next"), ("c", c, "c_next"), ("y", y_like, None)):
            if f"{name}s" in out and not self._steps:  # a one-step slice
                found[name] = self.from_sequence(out[f"{name}s"], like[None], f"{name}s {what}")[0]
            elif name in out:
                found[name] = self.from_user_vector(out[name], like, f"{name} {what}")
            elif attribute:
                value = _lookup(instance, self.declaration.attributes[attribute], ("forward", t, self.source))
                found[name] = self.from_user_vector(value, like,
                                                    f"self.{self.declaration.attributes[attribute]} after {what[12:]}")
        return found["h"], found["c"], found.get("y"), out, instance

    def step_forward(self, params: Mapping[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, t: int
                     ) -> StepForward:
        self._sizes = Sizes.of(params)
        if self.declaration.loss == "cross_entropy" and self._sizes.O < 2:
            raise UsageError(f"{self.name} has a softmax cross-entropy loss, which needs two classes or more: "
                             f"run it with --outputs 2 or more.")
        next_h, next_c, y, out, instance = self._forward(self.user_params(params), x, h, c, t)
        tensors = {"h": next_h, "c": next_c}
        source = out.get("cache", instance)
        for tensor, where in self.declaration.cache.items():
            what = f"the cache's {tensor!r} ({where!r}) at step {t}"
            tensors[CACHED[tensor]] = self.from_user_vector(_lookup(source, where, ("forward", t, self.source), what),
                                                            h, what)
        if not set(GATES) <= tensors.keys():
            gates = self.observe_by_saturation(params, lambda user, *a: self._forward(user, *a)[:2], x, h, c, t,
                                               (next_h, next_c))
            tensors |= {gate: value for gate, value in gates.items() if gate not in tensors}
        if y is None:
            y = self.head(params, next_h)
        else:
            tensors["y"] = y
        return StepForward(tensors, y, next_h, next_c, Saved(out.get("cache"), instance, x, h, c, y))

    def step_backward(self, params: Mapping[str, np.ndarray], dy: np.ndarray, dh_next: np.ndarray, dc_next: np.ndarray,
                      cache: Saved, t: int) -> dict[str, np.ndarray]:
        """One declared step backward fed the harness's gradients; its results in internal names.

        Without a head of its own the step gets dL/dh = dy @ Wy.T + dh_next.  A cross-entropy step computes its
        own dL/dy = softmax(y) - onehot(target) from index targets (here target = (t + n) mod O for row n), so it
        is given ``dh`` = dh_next + (dy - (softmax(y) - onehot(target))) @ Wy.T: the dL/dh it then forms is
        exactly the harness's, and every gradient it returns is compared except the head's own (dWy, dby), which
        belong to another loss.  Whole-sequence functions on a one-step slice get dhs = [dy @ Wy.T] (or dys =
        [dy]) and dh_next, dc_next as the gradients entering after their last step.
        """
        user = self.user_params(params)
        target: Any  # None, or the targets' indices: (N,), or one int for single vectors
        dh, target = dh_next, None
        if self.declaration.loss is None and self._steps:
            dh = self.head_backward(params, dy) + dh_next
        elif self.declaration.loss == "cross_entropy":
            target = (t + np.arange(1 if dy.ndim == 1 else len(dy))) % dy.shape[-1]  # (N,)
            target = int(target[0]) if self.single else target
            dh = dh_next + self.head_backward(params, dy - (softmax(cache.y) - onehot(target, cache.y)))
        roles = self._roles(user, dh=dh, dc=dc_next, dy=dy, x=cache.x, h=cache.h, c=cache.c)
        roles |= {"cache": cache.cache, "target": target, "dys": self.to_sequence(dy[None]),
                  "dhs": self.to_sequence(self.head_backward(params, dy)[None])}
        instance = cache.instance
        if instance is not None:
            self._set(instance, {"dh_next": roles["dh"], "dc_next": roles["dc"]}, "backward", t)
            self._set(instance, {f"d{m.name}": np.zeros_like(user[m.name]) for m in self.layout}, "backward", t)
        key = "step_backward" if self._steps else "sequence_backward"
        out = self._invoke(key, roles, "backward", t, instance)
        where = f"{self.sig[key].function} at step {t}"
        x_like = self.x_like(params, dh_next)
        result = self._gradients(out, instance, params, where, {"dx": ("dx", x_like), "dh": ("dh_prev", dh_next),
                                                               "dc": ("dc_prev", dc_next)}, t)
        if out.get("dxs") is not None:
            result["dx"] = self.from_sequence(out["dxs"], x_like[None], f"dxs returned by {where}")[0]
        return result

    def _gradients(self, out: dict[str, Any], instance: Any, params: Mapping[str, np.ndarray], where: str,
                   vectors: Mapping[str, tuple[str, np.ndarray]], t: int | None) -> dict[str, np.ndarray]:
        """The returned (or kept) gradients, checked, in internal names: dWf ..., dx, dh_prev (dh0), dc_prev."""
        out = self._gather(out, instance, [f"d{m.name}" for m in self.layout], "backward", t)
        out = self._gather(out, instance, ("dx", "dh_prev", "dc_prev"), "backward", t)
        out.setdefault("dh", out.get("dh_prev"))
        out.setdefault("dc", out.get("dc_prev"))
        grads = out.get("grads")
        if "grads" in out and not isinstance(grads, dict):
            raise UsageError(f"the grads returned by {where} are a {type(grads).__name__}; a dict is required.")
        user: dict[str, Any] = {}
        for m in self.layout:
            value = out.get(f"d{m.name}")
            if value is None and grads is not None:
                value = grads.get(f"d{m.name}", grads.get(m.name))
            if value is None:
                raise UsageError(f"{where} gave no gradient for {m.name}.")
            user[m.name] = value
        result = self.grads_to_internal(self.check_user_grads(user, params, f"returned by {where}"), params)
        for role, (name, like) in vectors.items():
            if out.get(role) is not None:
                result[name] = self.from_user_vector(out[role], like, f"{role} returned by {where}")
        return result

    # --- the whole-sequence functions ---
    def sequence_forward(self, problem: "Problem") -> tuple[dict[str, Any], Any]:
        self._sizes = Sizes.of(problem.params)
        user = self.user_params(problem.params)
        roles = self._roles(user, h=problem.h0, c=problem.c0) | {"xs": self.to_sequence(problem.inputs),
                                                                  "targets": self.to_sequence(problem.targets)}
        instance = self._new(user, problem.h0, problem.c0, "forward", None)
        out = self._invoke("sequence_forward", roles, "forward", None, instance)
        what = f"returned by {self.sig['sequence_forward'].function}"
        like = self.states_like(problem)
        forward: dict[str, Any] = {name: self.from_sequence(out[role], like, f"{role} {what}")
                                   for role, name in (("hs", "h"), ("cs", "c")) if role in out}
        forward |= {name: self.from_user_vector(out[role], initial, f"{role} {what} (the last state)")
                    for role, name, initial in (("h", "h_last", problem.h0), ("c", "c_last", problem.c0))
                    if role in out}
        ys = problem.targets  # the shape of the outputs
        if "ys" in out:
            ys = forward["y"] = self.from_sequence(out["ys"], ys, f"ys {what}")
        else:
            ys = self.head(problem.params, forward["h"])
        if "loss" in out and self.declaration.loss == "mse":
            forward["loss"] = float(as_float_array(out["loss"], np.shape(out["loss"]), f"loss {what}").sum())
        return forward, (ys, out.get("cache"), instance)

    def sequence_backward(self, problem: "Problem", forward: dict[str, Any], kept: Any) -> dict[str, np.ndarray]:
        ys, cache, instance = kept
        user = self.user_params(problem.params)
        dys = output_gradient(ys, problem.targets)
        roles = self._roles(user, dh=np.zeros_like(problem.h0), dc=np.zeros_like(problem.c0))
        roles |= {"dhs": self.to_sequence(self.head_backward(problem.params, dys)), "dys": self.to_sequence(dys),
                  "cache": cache}
        if instance is not None:
            self._set(instance, {f"d{m.name}": np.zeros_like(user[m.name]) for m in self.layout}, "backward", None)
        back = self._invoke("sequence_backward", roles, "backward", None, instance)
        grads = self._gradients(back, instance, problem.params, self.sig["sequence_backward"].function,
                                {"dh": ("dh0", problem.h0), "dc": ("dc0", problem.c0)}, None)
        if back.get("dxs") is not None:
            where = self.sig["sequence_backward"].function
            grads["dx"] = self.from_sequence(back["dxs"], problem.inputs, f"dxs returned by {where}")
        return grads


def softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def onehot(target: np.ndarray | int, like: np.ndarray) -> np.ndarray:
    """Rows of ``like``'s shape ([B,] O) with a one at each row's target index."""
    out = np.zeros_like(like)
    rows = out.reshape(-1, out.shape[-1])
    rows[np.arange(len(rows)), target] = 1
    return out


def _resolve(owner: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        owner = getattr(owner, part, None)
    return owner


# Where the user's code is when the harness reads or sets one of its attributes: (phase, step, its file).  A
# property is the user's code: it runs as a call of it does (time limit, exceptions located there).
At = tuple[Phase, int | None, str | None]


def _lookup(source: Any, where: int | str, at: At, what: str | None = None) -> Any:
    """``source[where]`` (an index, or a key of a dict), or the attribute path ``where`` ('a' or 'a.key')."""
    try:
        if isinstance(where, int) or isinstance(source, dict):
            return source[where]
        for part in where.split("."):
            source = source[part] if isinstance(source, dict) else _attribute(source, part, at)
        return source
    except (IndexError, KeyError, TypeError, AttributeError):
        raise UsageError(f"{what or where} cannot be read: the {where!r} declared in LSTM_COMPARE is not "
                         f"there.") from None


def _has(owner: Any, name: str) -> bool:
    """Whether ``owner`` has the attribute ``name``, found without running any of its code (a property's)."""
    try:
        inspect.getattr_static(owner, name)
    except AttributeError:
        return hasattr(type(owner), "__getattr__")  # attributes made on demand: reading is the only way to know
    return True


def _attribute(owner: Any, name: str, at: At) -> Any:
    """``owner.name``, read as the user's code runs (AttributeError where there is none)."""
    if not _has(owner, name):
        raise AttributeError(name)
    phase, step, source = at
    label = f"reading .{name}"
    return call(types.SimpleNamespace(**{label: lambda: getattr(owner, name)}, source=source), label, (), phase, step)


def _assign(instance: Any, path: str, value: Any, at: At) -> None:
    """Set the attribute path ``path`` of a fresh instance; it must already be there (a typo in a declaration
    would otherwise set an attribute the class never reads)."""
    *head, last = path.split(".")
    owner = _lookup(instance, ".".join(head), at, f"LSTM_COMPARE's attribute {path!r}") if head else instance
    if not (last in owner if isinstance(owner, dict) else _has(owner, last)):
        raise UsageError(f"LSTM_COMPARE's attributes name {path!r}, which a new {type(instance).__name__} does not "
                         f"have (the class never reads it).")
    if isinstance(owner, dict):
        owner[last] = value
    else:
        phase, step, source = at
        label = f"setting .{last}"
        call(types.SimpleNamespace(**{label: lambda: setattr(owner, last, value)}, source=source), label, (), phase,
             step)
