"""Drive the implementation under test: one forward/backward step at a time, or its own sequence loop.

Everything here talks to the user's code through its convention's ``Binding`` (``lstm_compare.usercode.conventions``),
which calls it through ``guard.call`` (copies in, exceptions become findings) and checks what comes back.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np

from lstm_compare.errors import ImplementationRaised, PerExampleGradients, UsageError
from lstm_compare.usercode.guard import is_immutable
from lstm_compare.usercode.module_state import ModuleState

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem
    from lstm_compare.usercode.conventions.base import Binding, SequenceRun


@dataclass(frozen=True)
class ForwardRun:
    """The implementation's forward tensors stacked over the steps that ran, its caches, and any failure."""

    tensors: dict[str, np.ndarray]  # name -> (steps_run, [B,] n): what is compared (empty: given to a sink)
    outputs: np.ndarray | None  # (steps_run, [B,] O): y_t, from which the chained backward's dy_t comes
    caches: list[Any]
    failure: ImplementationRaised | None
    state: ModuleState  # the run's own copy of the module's global state: its backward steps run on it too


def forward(binding: "Binding", problem: "Problem", fed_states: tuple[np.ndarray, np.ndarray] | None = None,
            sink: Callable[[Mapping[str, np.ndarray]], None] | None = None) -> ForwardRun:
    """Run the step forward over the sequence; with ``fed_states`` (h_prev, c_prev stacked), each step gets those.

    With a ``sink``, each step's tensors go to it as they come (the run's ``tensors`` stay empty): a caller that
    measures them as it goes never holds a whole run of them."""
    collected: dict[str, list[np.ndarray]] = {}
    outputs: list[np.ndarray] = []
    caches: list[Any] = []
    h, c = problem.h0, problem.c0
    failure = None
    state = binding.fresh_state()
    try:
        for t in range(problem.steps):
            if fed_states is not None:
                h, c = fed_states[0][t], fed_states[1][t]
            with state.active():
                step = binding.step_forward(problem.params, problem.inputs[t], h, c, t)
            if sink is not None:
                sink(step.tensors)
            else:
                for name, value in step.tensors.items():
                    collected.setdefault(name, []).append(value)
            outputs.append(step.y)
            caches.append(step.cache)
            h, c = step.h, step.c
    except ImplementationRaised as raised:
        failure = raised
    tensors = {name: np.stack(values) for name, values in collected.items() if values}
    return ForwardRun(tensors, np.stack(outputs) if outputs else None, caches, failure, state)


def backward_step(binding: "Binding", problem: "Problem", t: int, dy: np.ndarray, dh_next: np.ndarray,
                  dc_next: np.ndarray, cache: Any, state: ModuleState) -> dict[str, np.ndarray]:
    """One step backward of the run whose module ``state`` it is: {dWf ... , dh_prev, dc_prev (and dx)}, checked
    for shapes and dtype."""
    with state.active():
        return binding.step_backward(problem.params, dy, dh_next, dc_next, cache, t)


def backward_chain(binding: "Binding", problem: "Problem", run_: ForwardRun
                   ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield (t, step's backward) for t = T-1 ... 0 on the implementation's own chain: dy_t from its own y_t,
    dh_next and dc_next from its own step t+1.  An exception in the user's code ends it (ImplementationRaised).
    Each step's cache is let go once its backward has it (``run_.caches[t]`` becomes None)."""
    dh_next, dc_next = np.zeros_like(problem.h0), np.zeros_like(problem.c0)
    for t in reversed(range(problem.steps)):
        # outputs is None only for a run that failed at step 0, which is never chained
        dy = problem.output_gradient(run_.outputs[t], t)  # type: ignore[index]
        cache, run_.caches[t] = run_.caches[t], None
        result = backward_step(binding, problem, t, dy, dh_next, dc_next, cache, run_.state)
        dh_next, dc_next = result["dh_prev"], result["dc_prev"]
        yield t, result


def sequence(binding: "Binding", problem: "Problem") -> "SequenceRun":
    """Run the implementation's own whole-sequence functions once: a ``conventions.base.SequenceRun``."""
    with binding.fresh_state().active():
        return binding.sequence(problem)


@dataclass(frozen=True)
class BatchRefusal:
    """Why a file cannot run a batched problem: written for single vectors, or per-example gradients."""

    reason: str
    per_example: bool  # it takes batches, but returns one parameter gradient per batch element

    def sentence(self, name: str) -> str:
        if self.per_example:
            return f"{name} takes batches but returns per-example parameter gradients ({self.reason}); sum them " \
                   f"over the batch, or leave out --batch."
        return f"{name} takes single vectors only ({self.reason}); leave out --batch."

    def __str__(self) -> str:
        return self.reason


def batch_support(binding: "Binding", problem: "Problem") -> BatchRefusal | None:
    """None when the step functions take (B, X) batches; otherwise a ``BatchRefusal`` saying why not.

    One step forward and backward of a batched ``problem``: anything raised, or a result without the batch
    axis, means the file is written for single vectors only; parameter gradients with a batch axis, that it
    returns per-example gradients.
    """
    B, X = problem.inputs.shape[1:]
    probe = f"a one-step probe with a ({B}, {X}) batch"
    try:
        forward_run = forward(binding, replace(problem, inputs=problem.inputs[:1], targets=problem.targets[:1]))
        if forward_run.failure is not None:
            return BatchRefusal(f"{probe} failed: {forward_run.failure.message.rstrip('.')}", False)
        y = forward_run.outputs[0]  # type: ignore[index]  # it did not fail, so it has its output
        backward_step(binding, problem, 0, np.ones_like(y), np.zeros_like(problem.h0), np.zeros_like(problem.c0),
                      forward_run.caches[0], forward_run.state)
    except ImplementationRaised as raised:
        return BatchRefusal(f"{probe} failed: {raised.message.rstrip('.')}", False)
    except PerExampleGradients as error:
        return BatchRefusal(str(error).rstrip("."), True)
    except UsageError as error:
        return BatchRefusal(f"{probe} failed: {str(error).rstrip('.')}", False)
    return None


def cache_bytes(cache: Any) -> int:
    """What one step's cache holds in arrays of its own: every array reachable from it (through tuples, lists,
    dicts and objects' attributes), each counted once, leaving out the shared parameters (``guard.read_only``)."""
    seen: set[int] = set()
    total = 0
    pending = [cache]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, np.ndarray):
            total += 0 if is_immutable(value) else value.nbytes
        elif isinstance(value, (tuple, list, set, frozenset)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            pending.extend(vars(value).values())
    return total
