"""What a run will cost, estimated before anything is allocated, and the limits refused beyond (exit 2).

Memory (``check_fits``).  A report keeps every step of every traced tensor: the references' forward and backward
records (in float64, and again in float32 for a float32 run), your code's forward tensors and caches in each
mode, and one row of measurements per reference x mode x tensor x step.  So it grows linearly in T, and
linearly in T x B x H, plus the parameters, which exist in a few copies.  Measured peak RSS of ``lstm-compare
report --dtype float32`` against torch and jax (X=3, O=1) on the 2-core machine this project is built on:

    T=1000 H=64: 0.66 GiB     T=3000 H=64: 0.87 GiB     T=1000 H=256: 0.89 GiB     T=300 H=1024: 1.11 GiB

and the issue's T=5000 H=512: 4.07 GB.  The model below overestimates all five, by at most 12%.  A run whose
arrays (the estimate less ``BASE_BYTES``) would exceed the memory this machine (or its cgroup) has available is
refused before it starts.

Time (``check_gradcheck_fits``).  gradcheck evaluates the loss twice per checked entry, each a T-step Python
loop: about 25 microseconds per step plus the step's multiply-adds at about 5e9 a second (measured: T=400 H=8,
all 393 entries, 7.5 s; T=50 H=256, 993 entries, 5.7 s).  Above ``GRADCHECK_SECONDS`` estimated, it is refused
with the largest ``--max-entries`` (or ``--steps``) that would fit.
"""

import os
from dataclasses import replace
from pathlib import Path

from typing import TYPE_CHECKING, Sequence

from lstm_compare.errors import UsageError

if TYPE_CHECKING:
    from lstm_compare.lstm.problem import ProblemSpec

GIB = 2 ** 30
BASE_BYTES = 600 * 2 ** 20  # the interpreter, NumPy, pandas, torch and JAX (jit-compiled scan included)
ROW_BYTES = 32 * 2 ** 10  # per step: the measurement rows of every reference x mode x tensor, as built for the CSV
UNIT_BYTES = 1280  # per step and per element of (H + X + O) x B: ~160 float64 records across references and modes
PARAMETER_COPIES = 8  # float64 and float32 parameters, gradients, per-step contributions being measured
CACHE_VECTORS = 16  # the per-step cache UNIT_BYTES allows for: (H + X)-sized vectors (the question's holds 13)

SECONDS_PER_STEP_CALL = 25e-6
MULTIPLY_ADDS_PER_SECOND = 5e9
GRADCHECK_SECONDS = 300.0


def parameter_count(spec: "ProblemSpec") -> int:
    """Entries of Wf ... by: four (X+H, H) gate matrices, four H biases, the (H, O) head and its O bias; a model
    variant's, summed over its layers and directions (in closed form: a million layers cost nothing to count)."""
    H, X, O, model = spec.hidden, spec.inputs, spec.outputs, spec.model
    S, D, L = model.state_size(H), len(model.directions), model.layers
    extra = 3 * H * model.peepholes + H * S * (model.proj > 0)  # pf, pi, po; Wr
    first, above = 4 * (X + S + 1) * H + extra, 4 * (D * S + S + 1) * H + extra  # layer 1's input is X, D S above
    return D * (first + (L - 1) * above) + model.output_size(H) * O + O


def needed_bytes(spec: "ProblemSpec", references: Sequence[str] = ("torch", "jax"), cache_bytes: int = 0) -> float:
    """The estimated peak memory of one comparison of ``spec`` against ``references`` (see the module notes), with
    a measured per-step cache of ``cache_bytes`` where it exceeds what the model below allows for one."""
    per_step = _bytes_per_step(spec, references, cache_bytes)
    return BASE_BYTES + spec.steps * per_step + PARAMETER_COPIES * 8 * parameter_count(spec)


def _bytes_per_step(spec: "ProblemSpec", references: Sequence[str], cache_bytes: int = 0) -> float:
    share = max(len(references), 1) / 2  # measured with two references
    H, X, B, model = spec.hidden, spec.inputs, spec.batch or 1, spec.model
    runs = len(references) + 1  # the step modes' forward runs whose caches wait for the backward: isolated, chained
    extra = runs * max(0, cache_bytes - CACHE_VECTORS * 8 * B * (H + X)) * len(model.directions) * model.layers
    if model.plain:
        return extra + share * (ROW_BYTES + UNIT_BYTES * B * (H + X + spec.outputs))
    # A model variant: every layer and direction is compared as one cell (its own input size, h of size S), and
    # each reference's run of the whole model is kept.
    S, D, L = model.state_size(H), len(model.directions), model.layers
    per_slot = ROW_BYTES + UNIT_BYTES * B * (H + S)
    return extra + share * D * (L * per_slot + UNIT_BYTES * B * (X + (L - 1) * D * S))


# The address space a run takes beyond its arrays: the libraries, and the thread stacks and arenas torch and JAX
# reserve (virtual, mostly never touched); what a limit on the address space (``ulimit -v``) must leave them.
VIRTUAL_BASE_BYTES = int(2.25 * GIB)


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable, lowered to what a cgroup limit leaves and to what a
    limit on the address space (RLIMIT_AS, ``ulimit -v``) leaves beyond ``VIRTUAL_BASE_BYTES``; None if unknown."""
    limits = []
    address_space = _address_space_limit()
    if address_space is not None:
        limits.append(address_space - VIRTUAL_BASE_BYTES)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limits.append(int(Path(limit_file).read_text()) - int(Path(usage_file).read_text()))
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return min(limits)


def _address_space_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def check_fits(spec: "ProblemSpec", references: Sequence[str] = ("torch", "jax"), cache_bytes: int = 0) -> None:
    """Raise ``UsageError`` (one sentence: the estimate, what is available, what would fit) when comparing
    ``spec`` against ``references`` would allocate more memory than this machine has available.

    The fixed part of the estimate (``BASE_BYTES``: libraries, mostly loaded already) is left out of the
    comparison, so that a small problem is never refused on a busy machine.  ``cache_bytes``: what one step's
    cache of the user's code holds, measured (``cache_size``): every step of every run keeps one."""
    allocated, available = needed_bytes(spec, references, cache_bytes) - BASE_BYTES, available_bytes()
    if available is None or allocated <= available:
        return
    per_step = _bytes_per_step(spec, references, cache_bytes)
    steps = int((available - (allocated - spec.steps * per_step)) // per_step)
    if spec.model.layers > 1:
        one = needed_bytes(replace(spec, model=replace(spec.model, layers=1)), references) - BASE_BYTES
        layers = int(available // max(one, 1.0))
        fits = (f"at T={spec.steps} up to {layers} layers fit" if layers >= 1
                else "even one layer does not fit: choose a smaller --hidden or --steps")
    elif steps >= 1:
        fits = f"at H={spec.hidden} up to T={steps} fits"
    else:
        fits = f"H={spec.hidden} alone does not fit: choose a smaller hidden size"
    raise UsageError(f"{spec.label()} would allocate about {allocated / GIB:.1f} GiB of memory, more than the "
                     f"{available / GIB:.1f} GiB available here; {fits}.")


def gradcheck_seconds(spec: "ProblemSpec", entries: int) -> float:
    """Estimated seconds for gradcheck to check ``entries`` parameter entries of ``spec`` (two losses each)."""
    return 2 * entries * spec.steps * _seconds_per_step(spec)


def _seconds_per_step(spec: "ProblemSpec") -> float:
    multiply_adds = (spec.batch or 1) * (4 * (spec.inputs + spec.hidden) * spec.hidden + spec.hidden * spec.outputs)
    return SECONDS_PER_STEP_CALL + multiply_adds / MULTIPLY_ADDS_PER_SECOND


def check_gradcheck_fits(spec: "ProblemSpec", entries: int, minimum: int = 1,
                         limit: float = GRADCHECK_SECONDS) -> None:
    """Raise ``UsageError`` when checking ``entries`` entries would take longer than ``limit`` seconds here,
    saying how many entries (never fewer than ``minimum``, the smallest sample gradcheck takes) or how many steps
    would fit."""
    seconds = gradcheck_seconds(spec, entries)
    if seconds <= limit:
        return
    fitting_entries = int(limit // (2 * spec.steps * _seconds_per_step(spec)))
    steps = int(limit // (2 * entries * _seconds_per_step(spec)))
    fits = [f"--max-entries {fitting_entries}"] if fitting_entries >= minimum else []
    fits += [f"--steps {steps}"] if steps >= 1 else []
    hint = " or ".join(fits) if fits else "a smaller --hidden"
    raise UsageError(f"gradcheck of {entries} entries at {spec.label()} would take about {seconds / 60:.0f} min "
                     f"here (the limit is {limit / 60:.0f} min); {hint} would fit.")
