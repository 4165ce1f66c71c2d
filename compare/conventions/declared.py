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
import re
import types
from dataclasses import dataclass

import numpy as np

from compare.conventions.base import Binding, SequenceRun, StepForward, accepts
from compare.conventions.layout import Matrix, Sizes
from compare.errors import ImplementationRaised, UsageError
from compare.guard import as_float_array, call, unpack
from references.cell import GATES, output_gradient

NAMES = ("LSTM_COMPARE",)
KEYS = ("step_forward", "step_backward", "sequence_forward", "sequence_backward", "layout", "vectors", "matrices",
        "biases", "sequence_axes", "cache", "loss", "class", "attributes")
VECTORS = ("rows", "columns", "single")  # (batch, n), (n, batch), or one 1-D vector at a time
LOSSES = (None, "mse", "cross_entropy")
ROLES = {  # signature -> (argument roles, returned roles), besides the parameters' names, d-names, params, grads
    "step_forward": ({"x", "h", "c"}, {"h", "c", "y", "cache"}),
    "step_backward": ({"dh", "dc", "dy", "target", "cache", "x", "h", "c"}, {"dx", "dh", "dc"}),
    "sequence_forward": ({"xs", "h", "c", "targets"}, {"hs", "cs", "ys", "loss", "cache", "h", "c"}),
    "sequence_backward": ({"dhs", "dys", "dh", "dc", "cache"}, {"dxs", "dh", "dc"}),
}  # a whole sequence's h, c: the initial state taken, the last returned; dh, dc: entering after the last step
ATTRIBUTE_TAKES = {"h_prev": "h", "c_prev": "c", "dh_next": "dh", "dc_next": "dc"}  # attribute role -> argument
ATTRIBUTE_ROLES = ("h_prev", "c_prev", "h_next", "c_next", "dh_next", "dc_next", "dx", "dh_prev", "dc_prev")
# State and gradients a class may keep in attributes: role -> (internal tensor, returned role, signature).
KEPT = {"h_next": ("h", "h", "step_forward"), "c_next": ("c", "c", "step_forward"),
        "dx": ("dx", "dx", "step_backward"), "dh_prev": ("dh_prev", "dh", "step_backward"),
        "dc_prev": ("dc_prev", "dc", "step_backward")}
CACHED = {"f": "f", "i": "i", "g": "g", "o": "o", "f_pre": "f_pre", "i_pre": "i_pre", "g_pre": "g_pre",
          "o_pre": "o_pre", "c_tanh": "c_tanh", "c": "cache.c", "h": "cache.h", "c_prev": "cache.c_prev"}
SIGNATURE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\(([^()]*)\)\s*(?:->\s*(.*?))?\s*$")


def detect(module):
    if hasattr(module, "LSTM_COMPARE"):
        return "it declares its layout in LSTM_COMPARE"
    return None


@dataclass(frozen=True)
class Signature:
    """One declared call: the function (or method) name, its argument roles, its returned roles."""

    function: str
    args: tuple[str, ...]
    returns: tuple[str, ...]

    def __str__(self):
        return f"{self.function}({', '.join(self.args)}) -> {', '.join(self.returns)}"


@dataclass(frozen=True)
class Declaration:
    """``LSTM_COMPARE`` checked: the signatures, the layout (``layout.Matrix``) and the options."""

    signatures: dict  # key -> Signature
    layout: tuple  # the parameters, head included
    vectors: str  # VECTORS
    sequence_axes: str
    cache: dict  # internal tensor -> index or key
    loss: str | None
    cls: Signature | None  # the constructor, "Cell(X, H)"
    attributes: dict  # role -> attribute path


def _words(text):
    return tuple(word for word in re.split(r"[\s,]+", text.strip()) if word)


def _fail(key, problem):
    raise UsageError(f"LSTM_COMPARE[{key!r}] {problem}.")


def _parse_matrix(name, text, left, columns, bias_2d):
    if not isinstance(text, str) or text.count("|") != 1:
        _fail("layout", f"entry {name!r} must be a string 'rows | gate blocks', such as 'x h | i f o g'")
    rows, gates = (_words(part) for part in text.split("|"))
    if len(gates) == 1:
        gates = tuple(gates[0])  # "ifog"
    if not rows or not set(rows) <= {"x", "h", "1"} or len(set(rows)) != len(rows):
        _fail("layout", f"entry {name!r} has rows {' '.join(rows)!r}; use x, h and 1 (a bias row), each once")
    if not gates or not set(gates) <= {*GATES, "y"} or len(set(gates)) != len(gates):
        _fail("layout", f"entry {name!r} has blocks {' '.join(gates)!r}; use f, i, g, o (or y for the head), "
                        f"each once")
    if "y" in gates and (gates != ("y",) or "x" in rows):
        _fail("layout", f"entry {name!r} mixes the head (y) with gates or x rows; the head is h @ Wy + by alone")
    if rows == ("1",):  # a bias alone: 1-D, or (1, n) beside rows, (n, 1) beside columns
        return Matrix(name, rows, gates, left=columns and bias_2d, vector=not bias_2d)
    return Matrix(name, rows, gates, left=left)


def _check_coverage(layout):
    """Every gate's x, h and bias parts held exactly once, and the head, if any, whole."""
    held = [(gate, part) for m in layout for gate in m.gates for part in m.rows]
    for gate in (*GATES, "y"):
        parts = ("x", "h", "1") if gate != "y" else ("h", "1")
        for part in parts:
            count = held.count((gate, part))
            what = {"x": "x rows", "h": "h rows", "1": "bias"}[part]
            if count != 1 and (gate != "y" or any(g == "y" for g, _ in held)):
                _fail("layout", f"holds the {what} of {'the head' if gate == 'y' else 'gate ' + gate} "
                                f"{'twice' if count else 'nowhere'}")


def _parse_signature(key, text, names):
    match = SIGNATURE.match(text) if isinstance(text, str) else None
    if match is None:
        _fail(key, "must be a string 'name(role, ...) -> role, ...'")
    function, args, returns = match.group(1), _words(match.group(2)), _words(match.group(3) or "")
    params = set(names)
    allowed_args, allowed_returns = ROLES[key] if key in ROLES else ({"X", "H", "O"}, set())
    allowed_args = allowed_args | (params | {"params"} if key in ROLES else set())
    allowed_returns = allowed_returns | ({f"d{n}" for n in names} | {"grads"} if "backward" in key else set())
    for role, allowed, side in ((args, allowed_args, "takes"), (returns, allowed_returns | {"_"}, "returns")):
        unknown = [r for r in role if r not in allowed]
        if unknown:
            _fail(key, f"{side} an unknown role {unknown[0]!r}; it may use {', '.join(sorted(allowed))}")
        named = [r for r in role if r != "_"]
        if len(set(named)) != len(named):
            _fail(key, f"{side} a role twice")
    return Signature(function, args, returns)


def parse(declaration):
    """The checked ``Declaration`` of a file's ``LSTM_COMPARE`` (one UsageError sentence for any mistake)."""
    if not isinstance(declaration, dict):
        raise UsageError(f"LSTM_COMPARE must be a dict (it is of type {type(declaration).__name__}).")
    unknown = [key for key in declaration if key not in KEYS]
    if unknown:
        raise UsageError(f"LSTM_COMPARE has an unknown key {unknown[0]!r}; it may use {', '.join(KEYS)}.")
    if "layout" not in declaration:
        raise UsageError("LSTM_COMPARE needs the key 'layout'.")
    if not {"step_forward", "step_backward"} <= declaration.keys() and not {"sequence_forward",
                                                                           "sequence_backward"} <= declaration.keys():
        raise UsageError("LSTM_COMPARE needs step_forward and step_backward, or (for a file without step functions) "
                         "sequence_forward and sequence_backward.")
    if ("step_forward" in declaration) != ("step_backward" in declaration):
        raise UsageError("LSTM_COMPARE declares one of step_forward and step_backward; declare both or neither.")
    vectors = declaration.get("vectors", "rows")
    if vectors not in VECTORS:
        _fail("vectors", "must be 'rows', 'columns' or 'single'")
    matrices = declaration.get("matrices", "left" if vectors == "columns" else "right")
    if matrices not in ("left", "right"):
        _fail("matrices", "must be 'left' (W @ x, stored (out, in)) or 'right' (x @ W, stored (in, out))")
    layout_text = declaration["layout"]
    if not isinstance(layout_text, dict) or not all(isinstance(k, str) and k.isidentifier() for k in layout_text):
        _fail("layout", "must be a dict {parameter name: 'rows | gate blocks'}")
    biases = declaration.get("biases", "2d" if vectors == "columns" else "1d")
    if biases not in ("1d", "2d"):
        _fail("biases", "must be '1d' or '2d'")
    layout = tuple(_parse_matrix(name, text, matrices == "left", vectors == "columns", biases == "2d")
                   for name, text in layout_text.items())
    _check_coverage(layout)
    names = tuple(layout_text)
    roles = {"params", "grads", "_"} | {r for args, returns in ROLES.values() for r in args | returns}
    clash = [name for name in names if name in roles or name in {"X", "H", "O"}]
    if clash:
        _fail("layout", f"names a parameter {clash[0]!r}, which is a role; call it something else")
    signatures = {key: _parse_signature(key, declaration[key], names) for key in ROLES if key in declaration}
    if ("sequence_forward" in signatures) != ("sequence_backward" in signatures):
        raise UsageError("LSTM_COMPARE declares one of sequence_forward and sequence_backward; declare both or "
                         "neither.")
    letters = "Tn" if vectors == "single" else "TNn"
    axes = declaration.get("sequence_axes", letters)
    if not isinstance(axes, str) or sorted(axes) != sorted(letters):
        _fail("sequence_axes", f"must order the letters {', '.join(letters)} (steps, {'batch, ' * (len(letters) > 2)}"
                               f"features), such as '{letters[::-1]}'")
    cache = declaration.get("cache", {})
    if not isinstance(cache, dict) or not all(k in CACHED and isinstance(v, (int, str)) for k, v in cache.items()):
        _fail("cache", f"must map tensors ({', '.join(CACHED)}) to an index or a key")
    loss = declaration.get("loss")
    if loss not in LOSSES:
        _fail("loss", "must be None, 'mse' or 'cross_entropy'")
    cls = _parse_signature("class", declaration["class"], ()) if "class" in declaration else None
    attributes = declaration.get("attributes", {})
    roles = {*ATTRIBUTE_ROLES, *names, *(f"d{n}" for n in names)}
    if not isinstance(attributes, dict) or not all(k in roles and isinstance(v, str) for k, v in attributes.items()):
        _fail("attributes", f"must map roles ({', '.join(sorted(roles))}) to attribute names")
    if attributes and cls is None:
        _fail("attributes", "needs a 'class' whose instances keep them")
    result = Declaration(signatures, layout, vectors, axes, dict(cache), loss, cls, dict(attributes))
    _check_complete(result)
    return result


def _check_complete(d):
    """What the harness cannot do without: the new state, the gradients leaving a step, every parameter's."""
    has = lambda key, role, attribute=None: role in d.signatures[key].returns or attribute in d.attributes  # noqa
    takes = lambda key: set(d.signatures[key].args) | {ATTRIBUTE_TAKES.get(a) for a in d.attributes}  # noqa
    steps = "step_forward" in d.signatures
    forward, backward = ("step_forward", "step_backward") if steps else ("sequence_forward", "sequence_backward")
    for role, attribute in (("h", "h_next"), ("c", "c_next")):
        if steps and not has(forward, role, attribute):
            _fail(forward, f"must return {role} (or declare the attribute {attribute})")
        if not steps and not has(forward, role, attribute) and not has(forward, f"{role}s"):
            _fail(forward, f"must return {role}s or {role} (or declare the attribute {attribute}), as a file "
                           f"without step functions must")
    for role, attribute in (("dh", "dh_prev"), ("dc", "dc_prev")):
        if not has(backward, role, attribute):
            _fail(backward, f"must return {role} (or declare the attribute {attribute})")
    if not steps and ("c" not in takes(forward) or not {"dh", "dc"} <= takes(backward)):
        _fail(forward, "must take c, and sequence_backward dh and dc (the gradients entering after the last step), "
                       "so that a file without step functions can run one step from a given state")
    if not steps and d.cache:
        _fail("cache", "describes a step's cache, and the file declares no step functions (its gates are observed "
                       "by saturation)")
    if not steps and d.loss == "cross_entropy":
        _fail("loss", "'cross_entropy' needs step functions (step_forward and step_backward) that take the targets")
    if d.loss is not None and not any("y" in m.gates for m in d.layout):
        _fail("loss", f"{d.loss!r} needs the head in the layout, as 'Wy': 'h | y' and 'by': '1 | y'")
    wanted = {"mse": "dy", "cross_entropy": "target"}.get(d.loss, "dh") + ("" if steps else "s")
    if wanted not in takes(backward):
        _fail(backward, f"must take {wanted}, as its loss ({d.loss or 'the harness-owned head'}) requires")
    if "target" in takes(backward) and d.loss != "cross_entropy":
        _fail(backward, "takes target, which only a 'cross_entropy' loss gives")
    if d.loss == "mse" and not {"y", "ys"} & set(d.signatures[forward].returns):
        _fail(forward, "must return y, the output of the file's own head (its loss is 'mse')")
    if "sequence_forward" in d.signatures and not {"hs", "ys"} & set(d.signatures["sequence_forward"].returns):
        _fail("sequence_forward", "must return hs, the hidden states of every step (or ys, its head's outputs)")
    for key in ("step_backward", "sequence_backward"):
        if key in d.signatures and "grads" not in d.signatures[key].returns:
            differentiated = [m.name for m in d.layout if "y" not in m.gates or d.loss == "mse"]
            missing = [n for n in differentiated if not has(key, f"d{n}", f"d{n}")]
            if missing:
                _fail(key, f"must return d{missing[0]} (or grads, or declare the attribute d{missing[0]})")


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

    def __init__(self, module, name, source):
        super().__init__(module, name, source)
        if not hasattr(module, "LSTM_COMPARE"):
            raise UsageError(f"{name} defines no LSTM_COMPARE, which the declared convention requires.")
        d = self.declaration = parse(module.LSTM_COMPARE)
        self.sig = d.signatures
        self._sizes = None  # the problem's X, H, O (for a class's constructor), set by each step and sequence
        head = lambda m: "y" in m.gates  # noqa: E731
        self.has_head = d.loss is not None  # the step forms dL/dh from its own head (hints know dh is not given)
        own = d.loss == "mse"  # the head's gradients are the harness's, so they are compared
        self.layout = tuple(m for m in d.layout if not head(m) or own)
        self.head_layout = tuple(m for m in d.layout if head(m) and not own)
        self.sequence_functions = "sequence_forward and sequence_backward in its LSTM_COMPARE"
        self.columns, self.sequence_axes = d.vectors == "columns", d.sequence_axes
        self.single, self.always_batched = d.vectors == "single", d.vectors != "single"
        backward = self.sig.get("step_backward", self.sig.get("sequence_backward"))
        self.returns_dx = bool({"dx", "dxs"} & {*backward.returns, *d.attributes})
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

    def _check_callables(self):
        """Every declared function (or method: one more argument, self) exists and takes its roles."""
        cls = self.declaration.cls
        owner = self._class() if cls else self.module
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

    def _class(self):
        cls = getattr(self.module, self.declaration.cls.function, None)
        if not isinstance(cls, type):
            raise UsageError(f"{self.name} has no class {self.declaration.cls.function}, which LSTM_COMPARE['class'] "
                             f"declares.")
        return cls

    @property
    def has_sequence(self):
        return "sequence_forward" in self.sig

    @property
    def backward_names(self):
        """The base's, less the head's gradients of a cross-entropy file (they belong to its own loss)."""
        drop = {"dWy", "dby"} if self.declaration.loss == "cross_entropy" else set()
        return tuple(name for name in super().backward_names if name not in drop)

    def observed_forward(self):
        names = {"f", "i", "g", "o", "c", "h"} | {CACHED[k] for k in self.declaration.cache}
        forward = self.sig.get("step_forward", self.sig.get("sequence_forward"))
        return names | ({"y"} if {"y", "ys"} & set(forward.returns) else set())

    # --- vectors and sequences: 'single' passes 1-D vectors and (T, n) or (n, T) sequences as they are ---
    def to_user_vector(self, v):
        if not self.single:
            return super().to_user_vector(v)
        if v.ndim != 1:
            raise UsageError(f"{self.name} declares single vectors ('vectors': 'single'), so it takes no batch.")
        return v

    def from_user_vector(self, u, like, what):
        return as_float_array(u, like.shape, what) if self.single else super().from_user_vector(u, like, what)

    def to_sequence(self, values):
        if not self.single:
            return super().to_sequence(values)
        self.to_user_vector(values[0])  # refuses a batch
        return np.ascontiguousarray(values if self.sequence_axes == "Tn" else values.T)

    def from_sequence(self, value, like, what):
        if not self.single:
            return super().from_sequence(value, like, what)
        flip = self.sequence_axes != "Tn"
        value = as_float_array(value, like.shape[::-1] if flip else like.shape, what)
        return value.T if flip else value

    # --- calling the user's code ---
    def _invoke(self, key, roles, phase, t, instance=None):
        """Call the declared ``key`` with its argument roles filled from ``roles``: {returned role: value}."""
        sig = self.sig[key]
        fn = _resolve(instance if instance is not None else self.module, sig.function)
        label = sig.function.rsplit(".", 1)[-1]
        result = call(types.SimpleNamespace(**{label: fn}, source=self.source), label, [roles[a] for a in sig.args],
                      phase, t)
        if len(sig.returns) == 1:
            result = (result,)
        elif not sig.returns:
            return {}
        values = unpack(result, len(sig.returns), f"{sig.function} (declared as {sig})")
        return {role: value for role, value in zip(sig.returns, values) if role != "_"}

    def _new(self, user, h, c, phase, t):
        """A fresh instance of the declared class with the state and the parameters in its attributes."""
        if self.declaration.cls is None:
            return None
        cls, sizes = self.declaration.cls, self._sizes
        shim = types.SimpleNamespace(**{cls.function: self._class()}, source=self.source)
        instance = call(shim, cls.function, [getattr(sizes, a) for a in cls.args], phase, t)
        self._set(instance, {"h_prev": self.to_user_vector(h), "c_prev": self.to_user_vector(c), **user})
        return instance

    def _set(self, instance, values):
        for role, value in values.items():
            if role in self.declaration.attributes:
                _assign(instance, self.declaration.attributes[role], np.array(value))  # a writable copy of its own

    def _gather(self, out, instance, roles):
        """``out`` completed with the declared attributes of ``instance`` for each of ``roles`` not returned."""
        for role in roles:
            if role not in out and instance is not None and role in self.declaration.attributes:
                out[role] = _lookup(instance, self.declaration.attributes[role])
        return out

    def _roles(self, user, **vectors):
        return {"params": user, **user, **{k: self.to_user_vector(v) for k, v in vectors.items()}}

    # --- the step functions (or, without them, the whole-sequence functions on one-step slices) ---
    @property
    def _steps(self):
        return "step_forward" in self.sig

    def _forward(self, user, x, h, c, t):
        """One step forward: (next_h, next_c, y or None, {returned role: value}, instance), in internal shapes."""
        instance = self._new(user, h, c, "forward", t)
        key = "step_forward" if self._steps else "sequence_forward"
        roles = self._roles(user, x=x, h=h, c=c)
        if not self._steps:
            zeros = np.zeros((*h.shape[:-1], self._sizes.O), h.dtype)
            roles |= {"xs": self.to_sequence(x[None]), "targets": self.to_sequence(zeros[None])}
        out = self._invoke(key, roles, "forward", t, instance)
        what = f"returned by {self.sig[key].function} at step {t}"
        found = {}
        y_like = np.zeros((*h.shape[:-1], self._sizes.O), h.dtype)
        for name, like, attribute in (("h", h, "h_next"), ("c", c, "c_next"), ("y", y_like, None)):
            if f"{name}s" in out and not self._steps:  # a one-step slice
                found[name] = self.from_sequence(out[f"{name}s"], like[None], f"{name}s {what}")[0]
            elif name in out:
                found[name] = self.from_user_vector(out[name], like, f"{name} {what}")
            elif attribute:
                found[name] = self.from_user_vector(_lookup(instance, self.declaration.attributes[attribute]), like,
                                                    f"self.{self.declaration.attributes[attribute]} after {what[12:]}")
        return found["h"], found["c"], found.get("y"), out, instance

    def step_forward(self, params, x, h, c, t):
        self._sizes = Sizes.of(params)
        if self.declaration.loss == "cross_entropy" and self._sizes.O < 2:
            raise UsageError(f"{self.name} has a softmax cross-entropy loss, which needs two classes or more: "
                             f"run it with --outputs 2 or more.")
        next_h, next_c, y, out, instance = self._forward(self.user_params(params), x, h, c, t)
        tensors = {"h": next_h, "c": next_c}
        source = out.get("cache", instance)
        for tensor, where in self.declaration.cache.items():
            what = f"the cache's {tensor!r} ({where!r}) at step {t}"
            tensors[CACHED[tensor]] = self.from_user_vector(_lookup(source, where, what), h, what)
        if not set(GATES) <= tensors.keys():
            gates = self.observe_by_saturation(params, lambda user, *a: self._forward(user, *a)[:2], x, h, c, t)
            tensors |= {gate: value for gate, value in gates.items() if gate not in tensors}
        if y is None:
            y = self.head(params, next_h)
        else:
            tensors["y"] = y
        return StepForward(tensors, y, next_h, next_c, Saved(out.get("cache"), instance, x, h, c, y))

    def step_backward(self, params, dy, dh_next, dc_next, cache, t):
        """One declared step backward fed the harness's gradients; its results in internal names.

        Without a head of its own the step gets dL/dh = dy @ Wy.T + dh_next.  A cross-entropy step computes its
        own dL/dy = softmax(y) - onehot(target) from index targets (here target = (t + n) mod O for row n), so it
        is given ``dh`` = dh_next + (dy - (softmax(y) - onehot(target))) @ Wy.T: the dL/dh it then forms is
        exactly the harness's, and every gradient it returns is compared except the head's own (dWy, dby), which
        belong to another loss.  Whole-sequence functions on a one-step slice get dhs = [dy @ Wy.T] (or dys =
        [dy]) and dh_next, dc_next as the gradients entering after their last step.
        """
        user = self.user_params(params)
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
            self._set(instance, {"dh_next": roles["dh"], "dc_next": roles["dc"]})
            self._set(instance, {f"d{m.name}": np.zeros_like(user[m.name]) for m in self.layout})
        key = "step_backward" if self._steps else "sequence_backward"
        out = self._invoke(key, roles, "backward", t, instance)
        where = f"{self.sig[key].function} at step {t}"
        x_like = self.x_like(params, dh_next)
        result = self._gradients(out, instance, params, where, {"dx": ("dx", x_like), "dh": ("dh_prev", dh_next),
                                                               "dc": ("dc_prev", dc_next)})
        if out.get("dxs") is not None:
            result["dx"] = self.from_sequence(out["dxs"], x_like[None], f"dxs returned by {where}")[0]
        return result

    def _gradients(self, out, instance, params, where, vectors):
        """The returned (or kept) gradients, checked, in internal names: dWf ..., dx, dh_prev (dh0), dc_prev."""
        out = self._gather(out, instance, [f"d{m.name}" for m in self.layout])
        out = self._gather(out, instance, ("dx", "dh_prev", "dc_prev"))
        out.setdefault("dh", out.get("dh_prev"))
        out.setdefault("dc", out.get("dc_prev"))
        grads = out.get("grads")
        if "grads" in out and not isinstance(grads, dict):
            raise UsageError(f"the grads returned by {where} are a {type(grads).__name__}; a dict is required.")
        user = {}
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
    def sequence(self, problem):
        self._sizes = Sizes.of(problem.params)
        user = self.user_params(problem.params)
        instance = None
        roles = self._roles(user, h=problem.h0, c=problem.c0) | {"xs": self.to_sequence(problem.inputs),
                                                                  "targets": self.to_sequence(problem.targets)}
        try:
            instance = self._new(user, problem.h0, problem.c0, "forward", None)
            out = self._invoke("sequence_forward", roles, "forward", None, instance)
        except ImplementationRaised as raised:
            return SequenceRun({}, {}, raised)
        what = f"returned by {self.sig['sequence_forward'].function}"
        like = self.states_like(problem)
        forward = {name: self.from_sequence(out[role], like, f"{role} {what}")
                   for role, name in (("hs", "h"), ("cs", "c")) if role in out}
        ys = problem.targets  # the shape of the outputs
        if "ys" in out:
            ys = forward["y"] = self.from_sequence(out["ys"], ys, f"ys {what}")
        else:
            ys = self.head(problem.params, forward["h"])
        if "loss" in out and self.declaration.loss == "mse":
            forward["loss"] = float(as_float_array(out["loss"], np.shape(out["loss"]), f"loss {what}").sum())
        dys = output_gradient(ys, problem.targets)
        roles = self._roles(user, dh=np.zeros_like(problem.h0), dc=np.zeros_like(problem.c0))
        roles |= {"dhs": self.to_sequence(self.head_backward(problem.params, dys)), "dys": self.to_sequence(dys),
                  "cache": out.get("cache")}
        if instance is not None:
            self._set(instance, {f"d{m.name}": np.zeros_like(user[m.name]) for m in self.layout})
        try:
            back = self._invoke("sequence_backward", roles, "backward", None, instance)
        except ImplementationRaised as raised:
            return SequenceRun(forward, {}, raised)
        grads = self._gradients(back, instance, problem.params, self.sig["sequence_backward"].function,
                                {"dh": ("dh0", problem.h0), "dc": ("dc0", problem.c0)})
        if back.get("dxs") is not None:
            where = self.sig["sequence_backward"].function
            grads["dx"] = self.from_sequence(back["dxs"], problem.inputs, f"dxs returned by {where}")
        return SequenceRun(forward, grads, None)


def softmax(y):
    e = np.exp(y - y.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def onehot(target, like):
    """Rows of ``like``'s shape ([B,] O) with a one at each row's target index."""
    out = np.zeros_like(like)
    rows = out.reshape(-1, out.shape[-1])
    rows[np.arange(len(rows)), target] = 1
    return out


def _resolve(owner, dotted):
    for part in dotted.split("."):
        owner = getattr(owner, part, None)
    return owner


def _lookup(source, where, what=None):
    """``source[where]`` (an index, or a key of a dict), or the attribute path ``where`` ('a' or 'a.key')."""
    try:
        if isinstance(where, int) or isinstance(source, dict):
            return source[where]
        for part in where.split("."):
            source = source[part] if isinstance(source, dict) else getattr(source, part)
        return source
    except (IndexError, KeyError, TypeError, AttributeError):
        raise UsageError(f"{what or where} cannot be read: the declared {where!r} is not there.") from None


def _assign(instance, path, value):
    *head, last = path.split(".")
    owner = _lookup(instance, ".".join(head)) if head else instance
    if isinstance(owner, dict):
        owner[last] = value
    else:
        setattr(owner, last, value)
