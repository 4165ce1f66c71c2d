"""The declaration format (``LSTM_COMPARE``, see ``declared.py``): parsed and checked into a
``Declaration``, each mistake one sentence (``UsageError``)."""

import re
from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence

from lstm_compare.usercode.conventions.layout import Matrix
from lstm_compare.errors import UsageError
from lstm_compare.lstm.cell import GATES

KEYS = ("step_forward", "step_backward", "sequence_forward", "sequence_backward", "layout", "vectors", "matrices",
        "biases", "sequence_axes", "cache", "loss", "class", "attributes")
VECTORS = ("rows", "columns", "single")  # (batch, n), (n, batch), or one 1-D vector at a time
LOSSES = (None, "mse", "cross_entropy")
# What each key's value is: a text, or a dict (the loss may also be None)
KINDS: dict[str, tuple[type, ...]] = {**{key: (str,) for key in KEYS}, "layout": (dict,), "cache": (dict,),
                                      "attributes": (dict,), "loss": (str, type(None))}
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


@dataclass(frozen=True)
class Signature:
    """One declared call: the function (or method) name, its argument roles, its returned roles."""

    function: str
    args: tuple[str, ...]
    returns: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.function}({', '.join(self.args)}) -> {', '.join(self.returns)}"


@dataclass(frozen=True)
class Declaration:
    """``LSTM_COMPARE`` checked: the signatures, the layout (``layout.Matrix``) and the options."""

    signatures: dict[str, Signature]  # key -> Signature
    layout: tuple[Matrix, ...]  # the parameters, head included
    vectors: str  # VECTORS
    sequence_axes: str
    cache: dict[str, int | str]  # internal tensor -> index or key
    loss: str | None
    cls: Signature | None  # the constructor, "Cell(X, H)"
    attributes: dict[str, str]  # role -> attribute path


def _words(text: str) -> tuple[str, ...]:
    return tuple(word for word in re.split(r"[\s,]+", text.strip()) if word)


def _fail(key: str, problem: str) -> NoReturn:
    raise UsageError(f"LSTM_COMPARE[{key!r}] {problem}.")


def _parse_matrix(name: str, text: Any, left: bool, columns: bool, bias_2d: bool) -> Matrix:
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


def _check_coverage(layout: Sequence[Matrix]) -> None:
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


def _parse_signature(key: str, text: Any, names: Sequence[str]) -> Signature:
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


def parse(declaration: Any) -> Declaration:
    """The checked ``Declaration`` of a file's ``LSTM_COMPARE`` (one UsageError sentence for any mistake)."""
    if not isinstance(declaration, dict):
        raise UsageError(f"LSTM_COMPARE must be a dict (it is of type {type(declaration).__name__}).")
    unknown = [key for key in declaration if key not in KEYS]
    if unknown:
        raise UsageError(f"LSTM_COMPARE has an unknown key {unknown[0]!r}; it may use {', '.join(KEYS)}.")
    for key, value in declaration.items():  # an array or a list would break the checks below: one sentence first
        if key in KINDS and not isinstance(value, (*KINDS[key], str, int, float, type(None))):
            kinds = " or ".join("None" if kind is type(None) else "a text" if kind is str else "a dict"
                                for kind in KINDS[key])
            _fail(key, f"must be {kinds}, not a {type(value).__name__}")
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


def _check_complete(d: Declaration) -> None:
    """What the harness cannot do without: the new state, the gradients leaving a step, every parameter's."""
    has: Callable[..., bool]  # (key, role, attribute=None): whether the signature returns role or keeps attribute
    takes: Callable[[str], set[str | None]]  # key -> the roles it takes, attributes' included
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
    wanted = ({"mse": "dy", "cross_entropy": "target"}.get(d.loss, "dh")  # type: ignore[arg-type]  # None: no key
              + ("" if steps else "s"))
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
