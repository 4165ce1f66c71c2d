"""Draw a reproducible LSTM problem (parameters, sequence, targets, initial state) from one seed."""

from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

import numpy as np

from lstm_compare.choices import DTYPES, Dtype, invalid_choice, whole_number_fault
from lstm_compare.errors import UsageError
from lstm_compare.lstm.cell import PARAM_NAMES
from lstm_compare.lstm.model import Model, ModelProblem
from lstm_compare.lstm.records import Problem


def _keyword(default: Any, help: str, *, minimum: int | None = None, metavar: str | None = None,
             choices: tuple[str, ...] = (), model: bool = False) -> Any:
    """A problem keyword: its default, and what the command line makes of it (``--<name>``, ``help``, ...)."""
    return field(default=default, metadata={"help": help, "minimum": minimum, "metavar": metavar,
                                            "choices": choices, "model": model})


@dataclass(frozen=True)
class ProblemSpec:
    """The sizes and seed that define a problem; ``batch=None`` means unbatched 1-D vectors.

    Each field is a keyword of ``assert_lstm_matches``, the pytest fixture and ``ProblemSpec.of``, and a flag of
    the command line (``--steps``); a wrong value is a ``UsageError`` with the command line's sentence.
    """

    steps: int = _keyword(12, "sequence length", minimum=1, metavar="T")
    hidden: int = _keyword(5, "hidden size", minimum=1, metavar="H")
    inputs: int = _keyword(3, "input size", minimum=1, metavar="X")
    outputs: int = _keyword(1, "output size", minimum=1, metavar="O")
    batch: int | None = _keyword(None, "batch size, for code that takes (B, X) batches (default: unbatched)",
                                 minimum=1, metavar="B")
    dtype: Dtype = _keyword("float64", "the precision your code runs in", choices=DTYPES)
    seed: int = _keyword(0, "draws parameters, inputs, targets and the initial state", minimum=0, metavar="N")
    zero_state: bool = _keyword(False, "start from h0 = c0 = 0 (default: random)")
    model: Model = field(default_factory=Model)  # layers, directions, projection, peepholes (lstm/model.py)

    def __post_init__(self) -> None:
        if not isinstance(self.model, Model):
            raise UsageError(f"model: {self.model!r} is not a lstm_compare.lstm.model.Model.")
        for name, value in [(f.name, getattr(self, f.name)) for f in fields(self) if f.name != "model"] \
                + [(f.name, getattr(self.model, f.name)) for f in fields(self.model)]:
            fault = keyword_fault(name, value)
            if fault:
                raise UsageError(f"{name}: {fault}.")
        try:
            self.model.check(self.hidden)
        except ValueError as error:
            raise UsageError(str(error)) from None

    @classmethod
    def of(cls, **keywords: Any) -> "ProblemSpec":
        """The spec of the problem keywords (``PROBLEM_KEYWORDS``: ``steps=``, ..., ``layers=``, ...)."""
        unknown = [name for name in keywords if name not in PROBLEM_KEYWORDS]
        if unknown:
            raise TypeError(f"unexpected keyword {unknown[0]!r}: the problem keywords are "
                            f"{', '.join(PROBLEM_KEYWORDS)}")
        model = Model(**{name: keywords.pop(name) for name in MODEL_KEYWORDS if name in keywords})
        return cls(**keywords, model=model)

    def label(self) -> str:
        batch = "" if self.batch is None else f" B={self.batch}"
        state = " zero-state" if self.zero_state else ""
        sizes = f"T={self.steps} H={self.hidden} X={self.inputs} O={self.outputs}{batch}"
        model = "" if self.model.plain else f" ({self.model.describe()})"
        return f"{sizes} {self.dtype} seed={self.seed}{state}{model}"


# The model's own fields (lstm/model.py), as problem keywords: what the command line says of each.
MODEL_HELP = {"layers": ("stacked layers", 1, "L"), "bidirectional": ("a reverse direction in every layer", None, None),
              "proj": ("projection size, h = (o * tanh c) @ Wr with 0 < P < H; 0: none", 0, "P"),
              "peepholes": ("peephole weights pf, pi, po on the cell state", None, None)}


@dataclass(frozen=True)
class Keyword:
    """One problem keyword: a field of ``ProblemSpec`` or of its ``Model``."""

    name: str
    default: Any
    help: str
    minimum: int | None  # a whole number of at least this (None: not a number)
    metavar: str | None
    choices: tuple[str, ...]
    model: bool  # a field of the Model

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _keywords() -> dict[str, Keyword]:
    own = {f.name: Keyword(f.name, f.default, f.metadata["help"], f.metadata["minimum"], f.metadata["metavar"],
                           f.metadata["choices"], False) for f in fields(ProblemSpec) if f.name != "model"}
    model = {f.name: Keyword(f.name, f.default, MODEL_HELP[f.name][0], MODEL_HELP[f.name][1],
                             MODEL_HELP[f.name][2], (), True) for f in fields(Model)}
    return {**own, **model}


KEYWORDS = _keywords()
PROBLEM_KEYWORDS = tuple(KEYWORDS)  # steps ... zero_state, then layers ... peepholes
MODEL_KEYWORDS = tuple(name for name, keyword in KEYWORDS.items() if keyword.model)


def keyword_fault(name: str, value: object) -> str | None:
    """The command line's sentence for a wrong value of the problem keyword ``name``, or None."""
    keyword = KEYWORDS[name]
    if keyword.choices:
        return invalid_choice(value, keyword.choices)
    if keyword.minimum is not None:
        return None if value is None and keyword.default is None else whole_number_fault(value, keyword.minimum)
    if not isinstance(value, bool):
        return f"{value!r} is not True or False"
    return None


class ProblemKeywords(TypedDict, total=False):
    """The problem keywords, for a type checker (a test checks they are ``PROBLEM_KEYWORDS``)."""

    steps: int
    hidden: int
    inputs: int
    outputs: int
    batch: int | None
    dtype: Dtype
    seed: int
    zero_state: bool
    layers: int
    bidirectional: bool
    proj: int
    peepholes: bool


def cell_params(inputs: int, hidden: int, outputs: int, *, seed: int) -> dict[str, np.ndarray]:
    """A single cell's float64 parameters in the internal layout: Xavier-scaled weights, small biases."""
    rng = np.random.default_rng(seed)
    X, H, O = inputs, hidden, outputs
    params = {name: rng.normal(size=(X + H, H)) * np.sqrt(2 / (X + 2 * H)) for name in ("Wf", "Wi", "Wg", "Wo")}
    params["Wy"] = rng.normal(size=(H, O)) * np.sqrt(2 / (H + O))
    params.update({name: rng.normal(size=H) * 0.1 for name in ("bf", "bi", "bg", "bo")})
    params["by"] = rng.normal(size=O) * 0.1
    return {name: params[name] for name in PARAM_NAMES}


def make_problem(spec: ProblemSpec) -> Problem:
    """The float64 problem for ``spec``; cast it with ``Problem.astype`` for a lower-precision run.

    Drawn in float64 so that a float32 run and its float64 truth see the same rounded-once values.
    """
    rng = np.random.default_rng([spec.seed, 1])
    lead = () if spec.batch is None else (spec.batch,)
    params = cell_params(spec.inputs, spec.hidden, spec.outputs, seed=spec.seed)
    inputs = rng.normal(size=(spec.steps, *lead, spec.inputs))
    targets = rng.normal(size=(spec.steps, *lead, spec.outputs))
    if spec.zero_state:
        h0 = c0 = np.zeros((*lead, spec.hidden))
    else:
        h0, c0 = rng.normal(size=(*lead, spec.hidden)) * 0.5, rng.normal(size=(*lead, spec.hidden)) * 0.5
    problem = Problem(params, inputs, targets, h0, c0)
    if spec.dtype == "float32":
        # Round once to float32, then hold those exact values in float64 for the truth run.
        problem = problem.astype(np.float32).astype(np.float64)
    return problem


def make_model_problem(spec: ProblemSpec) -> ModelProblem:
    """The float64 problem of ``spec.model`` at ``spec``'s sizes (a variant model; see ``make_problem``).

    Each slot's weights are Xavier-scaled for its own fan-in and fan-out, biases small, peepholes and the
    projection of the same order; all drawn from ``spec.seed`` in ``Model.param_names()`` order.
    """
    model = spec.model
    model.check(spec.hidden)
    rng = np.random.default_rng([spec.seed, 2])
    lead = () if spec.batch is None else (spec.batch,)
    H, S, O = spec.hidden, model.state_size(spec.hidden), spec.outputs
    params = {}
    for slot in model.slots():
        fan_in = model.input_size(slot.layer, spec.inputs, H) + S
        for gate in "figo":
            params[f"W{gate}{slot.suffix}"] = rng.normal(size=(fan_in, H)) * np.sqrt(2 / (fan_in + H))
            params[f"b{gate}{slot.suffix}"] = rng.normal(size=H) * 0.1
        if model.peepholes:
            for gate in "fio":
                params[f"p{gate}{slot.suffix}"] = rng.normal(size=H) * 0.3
        if model.proj:
            params[f"Wr{slot.suffix}"] = rng.normal(size=(H, S)) * np.sqrt(2 / (H + S))
    D = model.output_size(H)
    params["Wy"] = rng.normal(size=(D, O)) * np.sqrt(2 / (D + O))
    params["by"] = rng.normal(size=O) * 0.1
    params = {name: params[name] for name in model.param_names()}
    n = len(model.slots())
    inputs = rng.normal(size=(spec.steps, *lead, spec.inputs))
    targets = rng.normal(size=(spec.steps, *lead, O))
    if spec.zero_state:
        h0, c0 = np.zeros((n, *lead, S)), np.zeros((n, *lead, H))
    else:
        h0, c0 = rng.normal(size=(n, *lead, S)) * 0.5, rng.normal(size=(n, *lead, H)) * 0.5
    problem = ModelProblem(model, params, inputs, targets, h0, c0)
    if spec.dtype == "float32":
        problem = problem.astype(np.float32).astype(np.float64)
    return problem
