"""Draw a reproducible LSTM problem (parameters, sequence, targets, initial state) from one seed."""

from dataclasses import dataclass, field

import numpy as np

from lstm_compare.lstm.cell import PARAM_NAMES
from lstm_compare.lstm.model import Model, ModelProblem
from lstm_compare.lstm.records import Problem


@dataclass(frozen=True)
class ProblemSpec:
    """The sizes and seed that define a problem; ``batch=None`` means unbatched 1-D vectors."""

    steps: int = 12
    hidden: int = 5
    inputs: int = 3
    outputs: int = 1
    batch: int | None = None
    dtype: str = "float64"
    seed: int = 0
    zero_state: bool = False
    model: Model = field(default_factory=Model)  # layers, directions, projection, peepholes (references/model.py)

    def label(self) -> str:
        batch = "" if self.batch is None else f" B={self.batch}"
        state = " zero-state" if self.zero_state else ""
        sizes = f"T={self.steps} H={self.hidden} X={self.inputs} O={self.outputs}{batch}"
        model = "" if self.model.plain else f" ({self.model.describe()})"
        return f"{sizes} {self.dtype} seed={self.seed}{state}{model}"


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
