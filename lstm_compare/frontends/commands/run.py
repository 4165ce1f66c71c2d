"""`lstm-compare run`: the comparison suite (what `make suite` runs), with a progress bar and one summary table."""

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lstm_compare.frontends.commands.common import (add_convention_argument, add_impl_argument, add_output_arguments,
                                                    implementation_from_args, output_dir, own_implementation, shown)
from lstm_compare.frontends.progress import progress
from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH
from lstm_compare.measuring.limits import check_fits
from lstm_compare.catalogs.suite import (CATALOG_CSV, GRIDS, SUITE_CSV, SUITE_DIR, describe_location, run_suite, slug,
                                         write_suite)

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from lstm_compare.catalogs.suite import CatalogCheck, ConfigResult, SuiteResult

HELP = ("run the comparison suite: a grid of sizes, dtypes, batches, initial states and seeds against PyTorch and "
        "JAX in every mode; without --impl, on the tool's own LSTM, then check that every bug of its catalogs is "
        "found where expected")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_impl_argument(parser)
    add_convention_argument(parser)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="grid", action="store_const", const="quick",
                      help="a smaller grid: T in {1, 12}, one size and seed")
    size.add_argument("--full", dest="grid", action="store_const", const="full",
                      help="a larger grid: more seeds, T up to 1000, H up to 64")
    parser.set_defaults(grid="default")
    add_output_arguments(parser, "also draw a heatmap PNG per reference x mode for each configuration that diverged")


def execute(args: argparse.Namespace) -> int:
    grid = GRIDS[args.grid]
    for spec in grid.specs():
        check_fits(spec, args.reference)
    out = output_dir(args, (SUITE_CSV, CATALOG_CSV))
    console = Console(width=None if Console().is_terminal else 150)
    impl = implementation_from_args(args)
    with progress("starting") as update:  # the catalog self-check checks the tool's own files: without --impl only
        result = run_suite(impl, grid, references=args.reference, progress=update, convention=args.convention,
                           variant_impl=None if args.impl else own_implementation(variant=True),
                           catalog=() if args.impl else None)
    paths = [shown(path, out, args.out) for path in write_suite(result, out, plot=args.plot)]
    console.print(summary_table(result))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    _print_verdict(console, result, args.out)
    console.print("Reports: " + ", ".join(paths[:2])
                  + (f", and {len(paths) - 2} more under {Path(args.out) / SUITE_DIR}" if len(paths) > 2 else ""))
    return EXIT_MATCH if result.ok else EXIT_DIVERGED


def summary_table(result: "SuiteResult") -> Table:
    """The grid, then the catalog self-check, as one table.

    A configuration where every reference and mode matches takes one row (its worst error over all of them);
    one with a divergence gets a row per reference x mode.  suite.csv always has every row.
    """
    table = Table(title=f"lstm-compare suite ({result.grid} grid): {escape(result.implementation)} against "
                        f"{', '.join(result.references)}", title_justify="left")
    justify: "JustifyMethod"
    for name, justify in (("configuration", "left"), ("reference", "left"), ("mode", "left"),
                          ("worst rel err", "right"), ("err / allowed", "right"), ("first divergence", "left"),
                          ("seconds", "right")):
        table.add_column(name, justify=justify, no_wrap=name != "first divergence")
    for config in result.configs:
        _add_config(table, config, result.references)
    for entry in result.catalog:
        _add_bug(table, entry)
    return table


def _add_config(table: Table, config: "ConfigResult", references: tuple[str, ...]) -> None:
    summaries = config.summaries
    seconds = f"{config.seconds:.2f}"
    if not config.diverged:
        worst_rel = max(s.worst_rel_err for s in summaries)
        worst_ratio = max(s.worst_ratio for s in summaries)
        modes = "all" if len(summaries) == len(references) * 3 else ", ".join(dict.fromkeys(s.mode for s in summaries))
        table.add_row(config.spec.label(), ", ".join(references), modes, f"{worst_rel:.1e}", f"{worst_ratio:.0e}",
                      "[green]none[/]", seconds)
        return
    previous = None
    for k, s in enumerate(summaries):
        status = f"[bold red]{s.finding.place()}[/]" if s.finding else "[green]none[/]"
        reference, previous = ("" if s.reference == previous else s.reference), s.reference
        table.add_row(config.spec.label() if k == 0 else "", reference, s.mode, f"{s.worst_rel_err:.1e}",
                      f"{s.worst_ratio:.0e}", status, seconds if k == 0 else "",
                      end_section=k == len(summaries) - 1)


def _add_bug(table: Table, entry: "CatalogCheck") -> None:
    """One row per catalog bug when every reference found it at the same place, else one per reference.

    The mode column is the mode the bug must be found in; the first divergence is where it was found.
    """
    check = entry.result
    places = set(check.found.values())
    groups = [(", ".join(check.found), next(iter(places)))] if len(places) == 1 else list(check.found.items())
    for k, (references, found) in enumerate(groups):
        if found == check.expected:
            status = f"[green]{describe_location(found, mode=False)}[/]"
        else:
            status = (f"[bold red]{describe_location(found, mode=False)}; "
                      f"expected {describe_location(check.expected, mode=False)}[/]")
        table.add_row(f"bug {check.bug.name}" if k == 0 else "", references, check.expected.mode, "", "", status,
                      f"{entry.seconds:.2f}" if k == 0 else "")


def _print_verdict(console: Console, result: "SuiteResult", out: str | os.PathLike[str]) -> None:
    diverged = [c for c in result.configs if c.diverged]
    missed = [c.result.bug.name for c in result.catalog if not c.ok]
    if diverged:
        console.print(f"[bold red]{len(diverged)} of {len(result.configs)} configurations diverged[/]; "
                      f"divergence reports in {Path(out) / SUITE_DIR}/ "
                      f"({', '.join(slug(c.spec) for c in diverged[:3])}{', ...' if len(diverged) > 3 else ''}).")
    else:
        console.print(f"[green]All {len(result.configs)} configurations match[/] {' and '.join(result.references)} "
                      "in every mode.")
    if missed:
        console.print(f"[bold red]Catalog self-check failed[/]: not found where expected: {', '.join(missed)}.")
    elif result.catalog:
        console.print(f"[green]Catalog self-check passed[/]: all {len(result.catalog)} bugs found where expected.")
