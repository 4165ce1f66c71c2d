"""A public catalog of known hand-written-LSTM bugs, each a one-line mutation of ``handrolled/seed_lstm.py``.

Each ``Bug`` names where the harness must find it (``Location``); ``check(bug)`` runs the comparison and
says whether every reference located it exactly there.  The suite's self-check and the tests use it.
"""

import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path

import handrolled.seed_lstm
from compare.engine import Config, run
from compare.problem import ProblemSpec


@dataclass(frozen=True)
class Location:
    """Where a bug must first show: mode, phase, step (negative counts from the end; None: whole sequence)."""

    mode: str
    phase: str
    step: int | None
    tensor: str

    def resolve(self, steps):
        """The same location with a negative step turned into an absolute one for a ``steps``-long sequence."""
        step = self.step if self.step is None or self.step >= 0 else steps + self.step
        return Location(self.mode, self.phase, step, self.tensor)


@dataclass(frozen=True)
class Bug:
    """One mutation: replace ``old`` (which must occur exactly once) with ``new`` in handrolled/seed_lstm.py."""

    name: str
    description: str
    old: str
    new: str
    expected: Location
    spec: ProblemSpec = field(default_factory=ProblemSpec)

    def source(self):
        """The mutated source text."""
        original = inspect.getsource(handrolled.seed_lstm)
        if original.count(self.old) != 1:
            raise ValueError(f"bug {self.name!r}: {self.old!r} occurs {original.count(self.old)} times, not once")
        return original.replace(self.old, self.new)

    def module(self):
        """The mutated LSTM as a fresh module object."""
        module = types.ModuleType(f"lstm_compare_bug_{self.name}")
        exec(compile(self.source(), f"<bug {self.name}>", "exec"), module.__dict__)
        return module

    def write(self, directory):
        """Write the mutated LSTM to ``directory/<name>.py`` (for the command line); returns the path."""
        path = Path(directory) / f"{self.name}.py"
        path.write_text(self.source())
        return path


@dataclass(frozen=True)
class CatalogResult:
    """Where each reference located one bug, against where it must be."""

    bug: Bug
    expected: Location
    found: dict  # reference -> Location or None (not found)

    @property
    def ok(self):
        return all(location == self.expected for location in self.found.values())


def check(bug, references=("torch", "jax")):
    """Run ``bug`` in the mode it must be found in, and compare each reference's first divergence."""
    expected = bug.expected.resolve(bug.spec.steps)
    report = run(bug.module(), Config(spec=bug.spec, references=tuple(references), modes=(expected.mode,)))
    found = {reference: None for reference in references}
    for f in report.findings:
        if f.mode == expected.mode:
            found[f.reference] = Location(f.mode, f.phase, f.step, f.tensor)
    return CatalogResult(bug, expected, found)


CATALOG = (
    Bug("forget_derivative_uses_c",
        "the forget-gate derivative multiplies by c instead of c_prev",
        "df_pre = dc * c_prev * f * (1 - f)", "df_pre = dc * c * f * (1 - f)",
        Location("isolated", "backward", -1, "dWf")),
    Bug("sequence_loop_runs_forward",
        "dlstm_loss walks the steps forward instead of in reverse",
        "reversed(list(zip(outputs, targets, caches)))", "list(zip(outputs, targets, caches))",
        Location("sequence", "backward", None, "dWo")),
)
