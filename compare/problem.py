"""Draw a reproducible LSTM problem (parameters, sequence, targets, initial state) from one seed."""

from dataclasses import dataclass

import numpy as np

from handrolled import init_params
from references import Problem


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

    def label(self) -> str:
        batch = "" if self.batch is None else f" B={self.batch}"
        state = " zero-state" if self.zero_state else ""
        sizes = f"T={self.steps} H={self.hidden} X={self.inputs} O={self.outputs}{batch}"
        return f"{sizes} {self.dtype} seed={self.seed}{state}"


def make_problem(spec: ProblemSpec) -> Problem:
    """The float64 problem for ``spec``; cast it with ``Problem.astype`` for a lower-precision run.

    Drawn in float64 so that a float32 run and its float64 truth see the same rounded-once values.
    """
    rng = np.random.default_rng([spec.seed, 1])
    lead = () if spec.batch is None else (spec.batch,)
    params = init_params(spec.inputs, spec.hidden, spec.outputs, seed=spec.seed, dtype=np.float64)
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
