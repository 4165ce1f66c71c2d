"""The comparison suite: a grid of problems, each compared in every mode with every reference, then the
catalog self-check (every known bug must be found exactly where the catalog says).

A grid is a few ``Block``s, each the product of its axes, rather than one product of every axis: the long
sequences and the wide sizes need only a few dtype x batch combinations, and JAX compiles once per distinct
shape (steps, batch, sizes, dtype), which dominates the run time of short sequences.
"""

import itertools
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from lstm_compare.catalogs.catalog import CATALOG as QUESTION_CATALOG
from lstm_compare.catalogs.catalog import check
from lstm_compare.catalogs.conventions import CONVENTION_CATALOG
from lstm_compare.catalogs.variants import VARIANTS
from lstm_compare.usercode.conventions import bind
from lstm_compare.usercode.drive import batch_support
from lstm_compare.modes.records import Config, reference_errors_as_usage
from lstm_compare.modes.pipeline import NOT_EXERCISED, run
from lstm_compare.errors import UsageError
from lstm_compare.usercode.guard import read_only
from lstm_compare.modes.models import model_refusal
from lstm_compare.lstm.problem import ProblemSpec, make_problem
from lstm_compare.output.atomic import commit, csv_output
from lstm_compare.output.report import report_files, report_outputs
from lstm_compare.output.summary import mode_summaries
from lstm_compare.references import MODEL_MODULES, REFERENCES, ReferenceRefused, load
from lstm_compare.lstm.model import Model

if TYPE_CHECKING:
    from lstm_compare.choices import Dtype
    from lstm_compare.catalogs.catalog import Bug, CatalogResult, Location
    from lstm_compare.usercode.conventions.base import Binding, Source
    from lstm_compare.usercode.drive import BatchRefusal
    from lstm_compare.modes.records import Report
    from lstm_compare.output.summary import ModeSummary


@dataclass(frozen=True)
class Size:
    hidden: int
    inputs: int
    outputs: int


SMALL, WIDE = Size(hidden=5, inputs=3, outputs=1), Size(hidden=32, inputs=8, outputs=3)
BATCH = 4


@dataclass(frozen=True)
class Block:
    """Every combination of these axes is one configuration."""

    steps: tuple[int, ...]
    sizes: tuple[Size, ...] = (SMALL,)
    dtypes: tuple["Dtype", ...] = ("float64", "float32")
    batches: tuple[int | None, ...] = (None, BATCH)
    zero_states: tuple[bool, ...] = (False, True)
    seeds: tuple[int, ...] = (0,)
    models: tuple[Model, ...] = (Model(),)  # model variants (references/model.py); default: the single cell

    def specs(self) -> Iterator[ProblemSpec]:
        for model, T, size, dtype, batch, zero, seed in itertools.product(
                self.models, self.steps, self.sizes, self.dtypes, self.batches, self.zero_states, self.seeds):
            yield ProblemSpec(steps=T, hidden=size.hidden, inputs=size.inputs, outputs=size.outputs,
                              batch=batch, dtype=dtype, seed=seed, zero_state=zero, model=model)


@dataclass(frozen=True)
class Grid:
    """A named list of blocks; ``specs()`` is their configurations in order, without repeats."""

    name: str
    blocks: tuple[Block, ...]

    def specs(self) -> tuple[ProblemSpec, ...]:
        return tuple(dict.fromkeys(spec for block in self.blocks for spec in block.specs()))


CATALOG = QUESTION_CATALOG + CONVENTION_CATALOG + VARIANTS  # every built-in convention's and variant's bugs
SEED_QUESTION = Size(hidden=5, inputs=1, outputs=1)  # the sizes of the question this project started from
# Model variants: stacked and bidirectional, projected, peepholes, and everything at once.
EVERYTHING = Model(layers=3, bidirectional=True, proj=2, peepholes=True)
VARIANT_MODELS = (Model(layers=2, bidirectional=True), Model(proj=3), Model(peepholes=True), EVERYTHING)

GRIDS = {
    "quick": Grid("quick", (
        Block(steps=(1, 12)),
    )),
    "default": Grid("default", (
        Block(steps=(12,), seeds=(0, 1, 2)),  # every dtype x batch x initial state
        Block(steps=(1,)),  # a single step: nothing arrives from later steps
        Block(steps=(200,), seeds=(3,)),  # long sequences: rounding accumulates over the recurrence
        Block(steps=(50,), sizes=(WIDE,), zero_states=(False,), seeds=(4, 5)),  # several outputs, wider layers
        Block(steps=(70,), sizes=(SEED_QUESTION,), zero_states=(False,), seeds=(6,)),  # one input, 70 steps
        Block(steps=(12,), zero_states=(False,), seeds=(7,), models=VARIANT_MODELS),  # model variants
        Block(steps=(300,), batches=(None,), zero_states=(False,), seeds=(8,), models=(EVERYTHING,)),
    )),
    "full": Grid("full", (
        Block(steps=(12,), seeds=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)),
        Block(steps=(1, 2), seeds=(0, 1)),
        Block(steps=(200,), seeds=(3, 10, 11)),
        Block(steps=(50,), sizes=(WIDE,), seeds=(4, 5, 12)),
        Block(steps=(70,), sizes=(SEED_QUESTION,), seeds=(6, 13, 14)),
        Block(steps=(1000,), zero_states=(False,), seeds=(15,)),
        Block(steps=(300,), sizes=(Size(hidden=64, inputs=8, outputs=2),), batches=(None,), zero_states=(False,),
              seeds=(16,)),
        Block(steps=(12,), seeds=(7, 17), models=VARIANT_MODELS),
        Block(steps=(300,), sizes=(SMALL, WIDE), batches=(None,), zero_states=(False,), seeds=(8,),
              models=(EVERYTHING, Model(layers=2, bidirectional=True))),
    )),
}


@dataclass(frozen=True)
class ConfigResult:
    """One configuration of the grid: its per-(reference, mode) summaries, the report, and its wall time."""

    spec: ProblemSpec
    report: "Report"
    seconds: float

    @property
    def summaries(self) -> list["ModeSummary"]:
        return mode_summaries(self.report)

    @property
    def diverged(self) -> bool:
        return self.report.diverged


@dataclass(frozen=True)
class CatalogCheck:
    """One catalog bug's self-check and its wall time."""

    result: "CatalogResult"
    seconds: float

    @property
    def ok(self) -> bool:
        return self.result.ok


@dataclass(frozen=True)
class SuiteResult:
    """Everything the suite ran: the grid's configurations, the catalog self-check, and what it skipped."""

    implementation: str
    grid: str
    references: tuple[str, ...]
    configs: tuple[ConfigResult, ...]
    catalog: tuple[CatalogCheck, ...]
    notes: tuple[str, ...]  # one sentence per kind of configuration or mode that was skipped, and why

    @property
    def ok(self) -> bool:
        return not any(c.diverged for c in self.configs) and all(r.ok for r in self.catalog)


def probe_batches(implementation: "Binding", spec: ProblemSpec = ProblemSpec(steps=1, batch=2)
                 ) -> "BatchRefusal | None":
    """None when the implementation takes (B, X) batches; otherwise why not (see ``drive.batch_support``)."""
    problem = make_problem(spec)
    params = {name: read_only(value) for name, value in problem.params.items()}
    return batch_support(implementation, replace(problem, params=params))


def run_suite(impl: "Source", grid: Grid = GRIDS["default"],
              references: Sequence[str] = REFERENCES, catalog: Sequence["Bug"] | None = None,
              progress: Callable[[str, int, int], object] | None = None, convention: str = "auto",
              variant_impl: "Source | None" = None) -> SuiteResult:
    """Run ``grid`` on ``impl`` (a path or a module), then the self-check of ``catalog`` (default: the whole
    public ``CATALOG``): a ``SuiteResult``.

    ``progress(label, done, total)``, if given, is called before each configuration and each catalog bug.
    ``variant_impl`` runs the model-variant configurations instead of ``impl`` (the project's own handrolled
    files: the question's cell has no peepholes or projection); variants its cell cannot take are skipped.
    """
    implementation = bind(impl, convention)  # a bad file is a UsageError before anything runs
    variants = implementation if variant_impl is None else bind(variant_impl, convention)
    catalog = CATALOG if catalog is None else catalog
    notes: list[str]
    specs, notes = grid.specs(), []
    refusals = {spec: model_refusal(variants, spec) for spec in specs if not spec.model.plain}
    untakeable = [spec for spec, refusal in refusals.items() if refusal]
    if untakeable:
        specs = tuple(spec for spec in specs if spec not in untakeable)
        notes.append(f"{len(untakeable)} model-variant configuration(s) skipped: {refusals[untakeable[0]]}")
    def run_by(spec: ProblemSpec) -> "Binding":
        return implementation if spec.model.plain else variants

    for binding, which in ((implementation, ""), (variants, "model-variant ")):
        if any(spec.batch is not None and run_by(spec) is binding for spec in specs):
            reason = probe_batches(binding)
            if reason:
                specs = tuple(spec for spec in specs if spec.batch is None or run_by(spec) is not binding)
                kind = "it returns per-example parameter gradients: " if reason.per_example else ""
                notes.append(f"batched {which}configurations skipped: {kind}{reason}.")
    accepted = {spec: accepting(spec, references) for spec in specs}
    notes += refusal_notes(accepted, references)
    specs = tuple(spec for spec in specs if accepted[spec])
    checked = {bug: accepting(bug.spec, references) for bug in catalog}  # variants: only references that run models
    unchecked = [bug for bug, names in checked.items() if not names]
    if unchecked:
        notes.append(f"{len(unchecked)} catalog bug(s) of model variants not checked: {' and '.join(references)} "
                     f"run(s) no model variants.")
    catalog = [bug for bug in catalog if checked[bug]]
    total = len(specs) + len(catalog)
    configs: list[ConfigResult] = []
    for k, spec in enumerate(specs):
        if progress:
            progress(spec.label(), k, total)
        start = time.perf_counter()
        try:
            report = run(run_by(spec), Config(spec=spec, references=accepted[spec]))  # type: ignore[arg-type]
        except UsageError as error:  # say which configuration could not be compared
            raise UsageError(f"{spec.label()}: {error}") from None
        configs.append(ConfigResult(spec, report, time.perf_counter() - start))
        batched = any(spec.batch is not None for spec in specs)  # the grid's own batched configurations
        notes += [note for note in (*report.notes, *report.skipped)
                  if note not in notes and not (batched and note.startswith(NOT_EXERCISED))]
    results: list[CatalogCheck] = []
    for k, bug in enumerate(catalog, start=len(specs)):
        if progress:
            progress(f"catalog: {bug.name}", k, total)
        start = time.perf_counter()
        results.append(CatalogCheck(check(bug, references=checked[bug]), time.perf_counter() - start))
    return SuiteResult(implementation.name, grid.name, tuple(references), tuple(configs), tuple(results),
                       tuple(notes))


def accepting(spec: ProblemSpec, references: Sequence[str]) -> tuple[str, ...]:
    """The references that take ``spec``: a reference module may refuse a problem in ``check_size`` (the
    finite-difference reference refuses long or wide ones), which costs nothing compared with running it."""
    if not spec.model.plain:  # model variants: the references that run models, which refuse no size
        return tuple(name for name in references if name in MODEL_MODULES)
    names = []
    for name in references:
        with reference_errors_as_usage():
            check_size = getattr(load(name), "check_size", None)
        try:
            if check_size is not None:
                check_size(make_problem(spec))
        except ReferenceRefused:
            continue
        names.append(name)
    return tuple(names)


def refusal_notes(accepted: Mapping[ProblemSpec, Sequence[str]], references: Sequence[str]) -> list[str]:
    """One sentence per reference that refused some configurations: how many, and the first of them."""
    notes = []
    for name in references:
        refused = [spec.label() for spec, names in accepted.items() if name not in names]
        if refused:
            more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
            notes.append(f"the {name} reference skipped {len(refused)} configuration(s) too large for it "
                         f"({refused[0]}{more}).")
    if accepted and not any(accepted.values()):
        raise UsageError(f"no configuration of this grid fits the {' and '.join(references)} reference(s); "
                         f"choose another --reference or a smaller grid (--quick).")
    return notes


# --- the reporting edge: suite.csv, catalog.csv, and a divergence report per diverged configuration ---

SUITE_CSV, CATALOG_CSV, SUITE_DIR = "suite.csv", "catalog.csv", "suite"
SUITE_COLUMNS = ["configuration", "reference", "mode", "status", "worst_rel_err", "worst_err_over_allowed",
                 "first_divergence", "report"]
CATALOG_COLUMNS = ["bug", "reference", "expected", "found", "status"]


def slug(spec: ProblemSpec) -> str:
    """A folder name for one configuration: T12-H5-X3-O1-B4-float32-seed1-zero."""
    batch = "" if spec.batch is None else f"-B{spec.batch}"
    zero = "-zero" if spec.zero_state else ""
    m = spec.model
    model = "" if m.plain else (f"-L{m.layers}" + ("-bi" if m.bidirectional else "") + (f"-P{m.proj}" if m.proj else "")
                                + ("-peep" if m.peepholes else ""))
    return (f"T{spec.steps}-H{spec.hidden}-X{spec.inputs}-O{spec.outputs}{batch}-{spec.dtype}-seed{spec.seed}{zero}"
            f"{model}")




def describe_location(location: "Location | None", mode: bool = True) -> str:
    """'isolated backward step 11, dWf' for a ``catalog.Location`` (or 'not found' for None)."""
    if location is None:
        return "not found"
    in_model = (location.layer, location.direction) != (1, "forward")
    return f"{location.mode + ' ' if mode else ''}{location.where.place(location.step, in_model=in_model)}"


def suite_frame(result: SuiteResult) -> pd.DataFrame:
    """One row per configuration x reference x mode, in grid order; deterministic (no timings)."""
    rows = []
    for config in result.configs:
        folder = f"{SUITE_DIR}/{slug(config.spec)}" if config.diverged else ""
        for s in config.summaries:
            rows.append({"configuration": config.spec.label(), "reference": s.reference, "mode": s.mode,
                         "status": "diverged" if s.finding else "match",
                         "worst_rel_err": _number(s.worst_rel_err), "worst_err_over_allowed": _number(s.worst_ratio),
                         "first_divergence": s.finding.place() if s.finding else "",
                         "report": folder if s.finding else ""})
    return pd.DataFrame(rows, columns=SUITE_COLUMNS)


def catalog_frame(result: SuiteResult) -> pd.DataFrame:
    """One row per catalog bug x reference: where it had to be found, where it was."""
    rows = []
    for entry in result.catalog:
        for reference, found in entry.result.found.items():
            ok = found == entry.result.expected
            rows.append({"bug": entry.result.bug.name, "reference": reference,
                         "expected": describe_location(entry.result.expected), "found": describe_location(found),
                         "status": "found" if ok else "missed"})
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)


def _number(value: float) -> str:
    """Three significant digits: enough to read, and stable against last-bit differences between BLAS builds."""
    return f"{value:.2e}" if np.isfinite(value) else str(value)


def write_suite(result: SuiteResult, out_dir: str | os.PathLike[str], plot: bool = False) -> list[Path]:
    """Write suite.csv, catalog.csv and, per diverged configuration, suite/<slug>/divergence.csv and
    first_divergence.csv (and its heatmaps with ``plot``), all or nothing; the reports an earlier run left under
    suite/ are removed once the new ones are in place.  Returns the paths.
    """
    out_dir = Path(out_dir)
    outputs = [csv_output(suite_frame(result), out_dir / SUITE_CSV),
               csv_output(catalog_frame(result), out_dir / CATALOG_CSV)]
    for config in result.configs:
        if config.diverged:
            outputs += report_outputs(config.report, out_dir / SUITE_DIR / slug(config.spec), plot)
    suite_dir = out_dir / SUITE_DIR
    folders = [f for f in suite_dir.iterdir() if f.is_dir()] if suite_dir.is_dir() else []
    earlier = {path for folder in folders for path in report_files(folder)}
    paths = commit(outputs, remove=sorted(earlier - {o.target for o in outputs}))
    for folder in folders:
        if not any(folder.iterdir()):
            folder.rmdir()
    return paths
