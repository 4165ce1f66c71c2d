"""The comparison's records: what to compare (``Config``), a traced reference (``ReferenceRun``), and everything
measured (``Report``)."""

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping

import numpy as np

from lstm_compare.locating.locate import Finding
from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.choices import DEFAULT_REFERENCES, Convention, Reference, check_config
from lstm_compare.lstm.where import MODES, Mode
from lstm_compare.measuring.measure import Expectation, TensorDiff
from lstm_compare.measuring.tolerance import Tolerance
from lstm_compare.errors import UsageError
from lstm_compare.references import ReferenceRefused, ReferenceUnavailable
from lstm_compare.usercode.conventions.naming import Naming

if TYPE_CHECKING:
    import pandas as pd

    from lstm_compare.lstm.records import Trace


@dataclass(frozen=True)
class Config:
    """What to compare: the problem's sizes and seed, which references, which modes (validated on construction:
    a ``UsageError`` in the command line's words)."""

    spec: ProblemSpec = field(default_factory=ProblemSpec)
    references: tuple[Reference, ...] = DEFAULT_REFERENCES
    modes: tuple[Mode, ...] = MODES
    convention: Convention = "auto"  # lstm_compare.usercode.conventions.CHOICES: how the user's file is written
    timeout: float | None = None  # seconds per call of your code; None: the CLI's --timeout or 60
    tolerance_factor: float = 1.0  # every allowance times this (1 or more): docs/tolerance.md

    def __post_init__(self) -> None:
        if not isinstance(self.spec, ProblemSpec):
            raise UsageError(f"spec: {self.spec!r} is not a lstm_compare.ProblemSpec.")
        check_config(self)


@dataclass(frozen=True)
class ReferenceRun:
    """One reference traced in the run's dtype (``same_dtype``) and in float64 (``truth``)."""

    name: str
    same_dtype: "Trace"  # run in the implementation's dtype
    truth: "Trace"  # run in float64 (the same object in a float64 run)
    tolerance: Tolerance  # for comparisons against this reference
    # what this reference expects of each forward tensor, with ``tolerance``, made as soon as it was traced so
    # that the same-dtype run's forward tensors can go (``prepared``); None until then
    forward_expected: Mapping[str, Expectation] | None = None


class TracedReferences:
    """The references one run compares against, in the order they are reported.  The run owns them: the step
    modes replace each with a lighter one once they no longer need its per-step forward tensors (``lighten``), and
    no other list holds what that lets go."""

    def __init__(self, runs: Iterable[ReferenceRun]) -> None:
        self._runs = list(runs)

    def __iter__(self) -> Iterator[ReferenceRun]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __getitem__(self, name: str) -> ReferenceRun:
        return next(run for run in self._runs if run.name == name)

    @property
    def names(self) -> list[str]:
        return [run.name for run in self._runs]

    def lighten(self, lighter: Callable[[ReferenceRun], ReferenceRun]) -> None:
        """Replace every reference by ``lighter(reference)``."""
        self._runs = [lighter(run) for run in self._runs]

    def lighten_one(self, name: str, lighter: Callable[[ReferenceRun], ReferenceRun]) -> None:
        """Replace the reference called ``name`` by ``lighter(reference)``."""
        self._runs = [lighter(run) if run.name == name else run for run in self._runs]


@dataclass(frozen=True)
class Report:
    """Everything measured: one ``TensorDiff`` per reference x mode x phase x tensor, and the findings."""

    implementation: str
    config: Config
    diffs: tuple[TensorDiff, ...]
    findings: tuple[Finding, ...]  # the first divergence of each (reference, mode) that diverged
    failures: tuple[Finding, ...]  # every exception raised in the implementation, located
    skipped: tuple[str, ...]  # one sentence per mode that could not run, and why
    naming: Naming | None = None  # the user's own names for the tensors (its convention's)
    notes: tuple[str, ...] = ()  # one sentence per thing worth knowing about the file or the run

    @property
    def diverged(self) -> bool:
        return bool(self.findings)

    def frame(self) -> "pd.DataFrame":
        """The rows of divergence.csv as a pandas DataFrame, with the same columns."""
        from lstm_compare.output.report import (
            divergence_frame,  # report.py imports this module
        )

        return divergence_frame(self)

    def first_divergence_frame(self) -> "pd.DataFrame":
        """The rows of first_divergence.csv as a pandas DataFrame, with the same columns."""
        from lstm_compare.output.report import first_divergence_frame

        return first_divergence_frame(self)

    def __repr__(self) -> str:  # a few lines whatever T (lstm_compare.output.notebook)
        from lstm_compare.output.notebook import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        from lstm_compare.output.notebook import report_html

        return report_html(self)


def paired(ref: ReferenceRun, build: Callable[["Trace", bool], dict[str, np.ndarray]]
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``build(trace, ...)`` for the float64 truth and the same-dtype run, computed once when they coincide."""
    truth = build(ref.truth, True)
    return truth, (truth if ref.same_dtype is ref.truth else build(ref.same_dtype, False))


@contextlib.contextmanager
def reference_errors_as_usage() -> Iterator[None]:
    """Within the block, a reference that cannot run here (not installed) or refuses the problem (too large for
    finite differences) is the user's one-sentence UsageError (exit 2)."""
    try:
        yield
    except (ReferenceUnavailable, ReferenceRefused) as error:
        raise UsageError(f"{error}".rstrip(".") + ".") from None
