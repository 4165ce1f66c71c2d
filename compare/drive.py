"""Drive the implementation under test: one forward/backward step at a time, or its own sequence loop.

Everything here talks to the user's code through ``guard.call`` (copies in, exceptions become
findings) and checks what comes back (count, floating dtype, shape) before anything is compared.
"""

from dataclasses import dataclass, replace

import numpy as np

from compare.errors import ImplementationRaised, UsageError
from compare.guard import as_float_array, call, unpack
from compare.tensors import CACHE_CHECKS, CACHE_FROM_CACHE


@dataclass(frozen=True)
class ForwardRun:
    """The implementation's forward tensors stacked over the steps that ran, its caches, and any failure."""

    tensors: dict  # name -> (steps_run, [B,] n)
    caches: list
    failure: ImplementationRaised | None


def forward(impl, problem, fed_states=None):
    """Run ``lstm`` over the sequence; with ``fed_states`` (h_prev, c_prev stacked), each step gets those.

    Collected per step: the gate tensors and c_tanh the cache names, the c, h and y that lstm returns, and
    the cache's own xh, c_prev, c and h (``cache.*``), which the backward pass will read.
    """
    lead = problem.h0.shape[:-1]
    X, H, O = problem.inputs.shape[-1], problem.h0.shape[-1], problem.targets.shape[-1]
    from_cache = [name for name in CACHE_FROM_CACHE if name in impl.cache_fields]
    checks = [name for name in CACHE_CHECKS if name[len("cache."):] in impl.cache_fields]
    shapes = {name: (*lead, H) for name in from_cache + checks} | {"cache.xh": (*lead, X + H)}
    collected = {name: [] for name in from_cache + ["c", "h", "y"] + checks}
    caches = []
    h, c = problem.h0, problem.c0
    try:
        for t in range(problem.steps):
            if fed_states is not None:
                h, c = fed_states[0][t], fed_states[1][t]
            result = call(impl, "lstm", (problem.params, problem.inputs[t], h, c), "forward", t)
            y, h, c, cache = unpack(result, 4, "lstm")
            collected["y"].append(as_float_array(y, (*lead, O), f"y returned by lstm at step {t}"))
            h = as_float_array(h, (*lead, H), f"h returned by lstm at step {t}")
            c = as_float_array(c, (*lead, H), f"c returned by lstm at step {t}")
            collected["h"].append(h)
            collected["c"].append(c)
            entries = unpack(cache, len(impl.cache_fields), f"lstm's cache (CACHE_FIELDS names "  # [guard] keep cache
                                                            f"{len(impl.cache_fields)} entries)")
            named = dict(zip(impl.cache_fields, entries))  # [guard] the cache itself goes to dlstm unchanged
            for name in from_cache + checks:
                entry = named[name.removeprefix("cache.")]
                what = f"cache entry {name.removeprefix('cache.')!r} returned by lstm at step {t}"
                collected[name].append(as_float_array(entry, shapes[name], what))
            caches.append(cache)
        failure = None
    except ImplementationRaised as raised:
        failure = raised
    tensors = {name: np.stack(values) for name, values in collected.items() if values}
    return ForwardRun(tensors, caches, failure)


def backward_step(impl, problem, t, dy, dh_next, dc_next, cache):
    """One ``dlstm`` call: returns ({dWf ... dby, dh_prev, dc_prev}) checked for shapes and dtype."""
    result = call(impl, "dlstm", (problem.params, dy, dh_next, dc_next, cache), "backward", t)
    dparams, dh_prev, dc_prev = unpack(result, 3, "dlstm")
    out = _param_grads(dparams, problem.params, f"dparams returned by dlstm at step {t}")
    out["dh_prev"] = as_float_array(dh_prev, problem.h0.shape, f"dh_prev returned by dlstm at step {t}")
    out["dc_prev"] = as_float_array(dc_prev, problem.h0.shape, f"dc_prev returned by dlstm at step {t}")
    return out


def _param_grads(dparams, params, what):
    if not isinstance(dparams, dict):
        raise UsageError(f"{what} is a {type(dparams).__name__}; a dict with keys Wf ... by is required.")
    unknown = sorted(set(dparams) - set(params), key=str)
    if unknown:
        raise UsageError(f"{what} has an entry {unknown[0]!r} that is not a parameter (Wf ... by).")
    out = {}
    for name, value in params.items():
        if name not in dparams:
            raise UsageError(f"{what} has no entry {name!r}.")
        out[f"d{name}"] = as_float_array(dparams[name], value.shape, f"{what}[{name!r}]")
    return out


def output_gradient(y, target):
    """dL/dy_t for the seed convention's loss: 2 (y_t - target_t) / O."""
    return 2 * (y - target) / y.shape[-1]


def backward_chain(impl, problem, run_):
    """Yield (t, step's backward) for t = T-1 ... 0 on the implementation's own chain: dy_t from its own y_t,
    dh_next and dc_next from its own step t+1.  An exception in the user's code ends it (ImplementationRaised)."""
    dh_next, dc_next = np.zeros_like(problem.h0), np.zeros_like(problem.c0)
    for t in reversed(range(problem.steps)):
        dy = output_gradient(run_.tensors["y"][t], problem.targets[t])
        result = backward_step(impl, problem, t, dy, dh_next, dc_next, run_.caches[t])
        dh_next, dc_next = result["dh_prev"], result["dc_prev"]
        yield t, result


@dataclass(frozen=True)
class SequenceRun:
    """What the implementation's own ``lstm_loss``/``dlstm_loss`` returned."""

    outputs: np.ndarray | None  # (T, [B,] O)
    loss: float | None
    grads: dict | None  # dWf ... dby
    failure: ImplementationRaised | None


def sequence(impl, problem):
    """Run the implementation's own sequence functions once."""
    lead, O = problem.h0.shape[:-1], problem.targets.shape[-1]
    args = (problem.params, problem.h0, problem.c0, problem.inputs, problem.targets)
    try:
        result = call(impl, "lstm_loss", args, "forward", None)
    except ImplementationRaised as raised:
        return SequenceRun(None, None, None, raised)
    _, outputs, loss, _, _, caches = unpack(result, 6, "lstm_loss")
    if not isinstance(outputs, (list, tuple, np.ndarray)) or len(outputs) != problem.steps:
        raise UsageError(f"lstm_loss must return the {problem.steps} per-step outputs as its second value.")
    outputs = np.stack([as_float_array(y, (*lead, O), f"output {t} of lstm_loss") for t, y in enumerate(outputs)])
    loss = float(as_float_array(loss, np.shape(loss), "the loss returned by lstm_loss").sum())
    try:
        dparams = call(impl, "dlstm_loss", (problem.params, problem.inputs, problem.targets,
                                            list(outputs), caches), "backward", None)
    except ImplementationRaised as raised:
        return SequenceRun(outputs, loss, None, raised)
    return SequenceRun(outputs, loss, _param_grads(dparams, problem.params, "dparams returned by dlstm_loss"), None)



def batch_support(impl, problem):
    """None when ``lstm`` and ``dlstm`` take (B, X) batches; otherwise why not, in a few words.

    One step forward and backward of a batched ``problem``: anything raised, or a result without the batch
    axis (or with parameter gradients not summed over it), means the file is written for single vectors only.
    """
    B, X = problem.inputs.shape[1:]
    probe = f"a one-step probe with a ({B}, {X}) batch"
    try:
        forward_run = forward(impl, replace(problem, inputs=problem.inputs[:1], targets=problem.targets[:1]))
        if forward_run.failure is not None:
            return f"{probe} failed: {forward_run.failure.message.rstrip('.')}"
        y = forward_run.tensors["y"][0]
        backward_step(impl, problem, 0, np.ones_like(y), np.zeros_like(problem.h0), np.zeros_like(problem.c0),
                      forward_run.caches[0])
    except ImplementationRaised as raised:
        return f"{probe} failed: {raised.message.rstrip('.')}"
    except UsageError as error:
        return f"{probe} failed: {str(error).rstrip('.')}"
    return None
