"""The step modes' backward pass: t = T-1 ... 0 once, measured in batches of steps against each reference."""

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised
from lstm_compare.lstm.cell import PARAM_GRADS, VARIANT_PARAM_GRADS, stepwise_outer
from lstm_compare.lstm.where import Mode
from lstm_compare.measuring import kernels
from lstm_compare.measuring.measure import AnyExpectation, expectation, outer_expectation
from lstm_compare.modes.collect import Collector
from lstm_compare.modes.records import ReferenceRun, TracedReferences, paired
from lstm_compare.usercode import drive

if TYPE_CHECKING:
    from lstm_compare.lstm.records import Problem, Trace
    from lstm_compare.usercode.conventions.base import Binding
    from lstm_compare.usercode.drive import ForwardRun


def fed_next(backward: Mapping[str, np.ndarray], state: str, t: int) -> np.ndarray:
    """d{state}_next at step t: the trace's own, or step t+1's d{state}_prev (zero after the last step)."""
    if f"d{state}_next" in backward:
        return backward[f"d{state}_next"][t]
    prev = backward[f"d{state}_prev"]
    return prev[t + 1] if t + 1 < len(prev) else np.zeros_like(prev[t])


def _backward_expectations(ref: ReferenceRun, steps: list[int], problem: "Problem", truth_problem: "Problem",
                           names: Sequence[str]) -> dict[str, AnyExpectation]:
    """Per backward tensor in ``names`` at ``steps``: what this reference expects (each step's dWf ... dby
    contribution, dx, dh_prev, dc_prev).  An unbatched weight's contribution stays as its outer product's factors
    (``OuterExpectation``): the same figures, without forming a parameter-sized array per step."""
    params = [name[1:] for name in names if name in PARAM_GRADS or name in VARIANT_PARAM_GRADS]

    def arrays(trace: "Trace", is_truth: bool) -> dict[str, Any]:
        inputs = truth_problem.inputs if is_truth else problem.inputs
        parts = trace.param_grad_parts(steps, inputs, params) if params else {}
        other = {"dx": lambda: trace.totals.dinputs[steps], "dh_prev": lambda: trace.backward["dh_prev"][steps],
                 "dc_prev": lambda: trace.backward["dc_prev"][steps]}
        return {name: parts[name[1:]] if name[1:] in parts else other[name]() for name in names}

    truth, same = paired(ref, arrays)
    expected: dict[str, AnyExpectation] = {}
    for name in names:
        t, r = truth[name], same[name]
        if not isinstance(t, tuple):
            expected[name] = expectation(t, r, ref.tolerance)
        elif t[0].ndim == 2:  # unbatched: an outer product, kept as its factors
            expected[name] = outer_expectation(t, t if r is t else r, ref.tolerance)
        else:  # batched: a sum over the batch, formed as the references' own products
            formed = stepwise_outer(*t)
            expected[name] = expectation(formed, formed if r is t else stepwise_outer(*r), ref.tolerance)
    return expected


# Backward steps are measured in batches of about this many elements per tensor: small tensors gain from
# fewer NumPy calls, while large ones are best measured step by step, while their data is still in cache.  Each
# tensor's batch follows its own size, so biases and state gradients are not measured one step at a time
# beside large weights.
ELEMENTS_PER_BATCH = 1 << 15


MAX_STEPS_PER_BATCH = 256


def steps_per_batch(params: Mapping[str, np.ndarray]) -> int:
    """Steps per batch for the largest parameter (the batch of every tensor before tensors were grouped)."""
    return _steps_for(max(v.size for v in params.values()))


def _steps_for(size: int) -> int:
    return int(np.clip(ELEMENTS_PER_BATCH // max(size, 1), 1, MAX_STEPS_PER_BATCH))


def _batch_groups(problem: "Problem", names: Sequence[str]) -> dict[int, list[str]]:
    """Backward tensor names grouped by how many steps are measured together (by their size per step)."""
    sizes = {"dx": problem.inputs[0].size, "dh_prev": problem.h0.size, "dc_prev": problem.c0.size,
             **{f"d{k}": v.size for k, v in problem.params.items()}}
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(_steps_for(sizes.get(name, max(sizes.values()))), []).append(name)
    return groups


Pending = dict[tuple[str, Mode], list[tuple[int, dict[str, np.ndarray]]]]  # (reference, mode) -> [(t, result)]


def backward_pass(impl: "Binding", problem: "Problem", truth_problem: "Problem", refs: TracedReferences,
              chained: "ForwardRun | None", isolated: dict[str, "ForwardRun"], collector: "Collector",
              names: Sequence[str]) -> None:
    """Walk t = T-1 ... 0 once; measure ``names`` in batches of steps, preparing each reference's expectations once
    (with the fused kernels where the weight contributions are large enough to repay compiling them)."""
    with kernels.use(kernels.worth_it(problem)):
        _backward_steps(impl, problem, truth_problem, refs, chained, isolated, collector, names)


def _backward_steps(impl: "Binding", problem: "Problem", truth_problem: "Problem", refs: TracedReferences,
                    chained: "ForwardRun | None", isolated: dict[str, "ForwardRun"], collector: "Collector",
                    backward_names: Sequence[str]) -> None:
    alive: dict[tuple[str, Mode], "ForwardRun"] = {(ref.name, "isolated"): isolated[ref.name] for ref in refs
                                                   if ref.name in isolated}
    if chained is not None:
        alive.update({(ref.name, "chained"): chained for ref in refs})
    alive = {key: run_ for key, run_ in alive.items() if run_.failure is None}
    groups = _batch_groups(problem, backward_names)
    collector.order_backward([ref.name for ref in refs], backward_names)
    pending: dict[int, Pending] = {batch: {key: [] for key in alive} for batch in groups}  # not yet measured
    chain = drive.backward_chain(impl, problem, chained) if chained is not None else None
    for t in reversed(range(problem.steps)):
        chained_result: Any = None  # this step's backward on the own chain, or the exception that ended it
        if any(mode == "chained" for _, mode in alive):
            try:
                _, chained_result = next(chain)  # type: ignore[arg-type]  # made whenever a chained mode runs
            except ImplementationRaised as raised:
                chained_result = raised
        for ref in refs:
            for mode in ("isolated", "chained"):
                if (ref.name, mode) not in alive:
                    continue
                result = chained_result if mode == "chained" else _isolated_step(impl, problem, t, ref, isolated)
                if isinstance(result, ImplementationRaised):
                    collector.fail(ref.name, mode, result)
                    del alive[(ref.name, mode)]
                else:
                    for batch, names in groups.items():
                        pending[batch][(ref.name, mode)].append((t, {name: result[name] for name in names}))
        for batch, names in groups.items():
            if t == 0 or not alive or max(len(p) for p in pending[batch].values()) >= batch:
                _measure_pending(refs, pending[batch], problem, truth_problem, collector, names)
        if not alive:
            return


def _measure_pending(refs: TracedReferences, pending: Pending, problem: "Problem", truth_problem: "Problem",
                     collector: "Collector", names: Sequence[str]) -> None:
    for ref in refs:
        keys = [key for key in pending if key[0] == ref.name and pending[key]]
        if not keys:
            continue
        steps = sorted({t for key in keys for t, _ in pending[key]}, reverse=True)
        expected = _backward_expectations(ref, steps, problem, truth_problem, names)
        for key in keys:
            key_steps = [t for t, _ in pending[key]]
            results = [result for _, result in pending[key]]
            mine = expected
            if key_steps != steps:  # a mode that stopped early: only its steps (indexing copies, so only then)
                rows = [steps.index(t) for t in key_steps]
                mine = {name: e.rows(rows) for name, e in expected.items()}
            collector.backward_steps(*key, key_steps, results, mine)
            pending[key] = []


def _isolated_step(impl: "Binding", problem: "Problem", t: int, ref: ReferenceRun, isolated: dict[str, "ForwardRun"]
                   ) -> dict[str, np.ndarray] | ImplementationRaised:
    """Step t's backward fed the reference's dy, dh_next and dc_next, with the cache its own forward made (let go
    of here: each step's backward runs once)."""
    b = ref.same_dtype.backward
    run_ = isolated[ref.name]
    cache, run_.caches[t] = run_.caches[t], None
    try:
        return drive.backward_step(impl, problem, t, b["dy"][t], fed_next(b, "h", t), fed_next(b, "c", t), cache,
                                   run_.state)
    except ImplementationRaised as raised:
        return raised
