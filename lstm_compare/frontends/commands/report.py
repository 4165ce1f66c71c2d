"""`lstm-compare report`: compare one implementation with the references and write the divergence reports."""

import argparse

from lstm_compare.choices import factor_fault
from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH
from lstm_compare.frontends.commands.common import (add_convention_argument, add_output_arguments,
                                                    add_problem_arguments, built_in_note, implementation_from_args,
                                                    output_dir, shown, spec_from_args)
from lstm_compare.frontends.progress import progress
from lstm_compare.measuring.limits import check_fits
from lstm_compare.modes.pipeline import run
from lstm_compare.modes.records import Config
from lstm_compare.output.report import DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV, write_reports
from lstm_compare.output.summary import summarize

HELP = "compare your LSTM with PyTorch and JAX and write divergence.csv and first_divergence.csv"


def tolerance_factor(text: str) -> float:
    """An argparse type: a finite number of at least 1 (``Config.tolerance_factor``'s sentence)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    fault = factor_fault(value)
    if fault:
        raise argparse.ArgumentTypeError(fault)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser)
    add_convention_argument(parser)
    add_output_arguments(parser, "also draw heatmap-<reference>-<mode>.png: log10(error / allowed) per step and tensor")
    parser.add_argument("--tolerance-factor", type=tolerance_factor, default=1.0, metavar="F",
                        help="accept F times more error than the tolerance rule allows (default 1; see "
                             "docs/tolerance.md)")


def execute(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    check_fits(spec, args.reference)
    out = output_dir(args, (DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV))
    config = Config(spec=spec, references=args.reference, convention=args.convention,
                    tolerance_factor=args.tolerance_factor)
    impl = implementation_from_args(args)
    with progress(f"comparing {impl} with {', '.join(args.reference)} ({spec.label()})"):
        report = run(impl, config)
    paths = write_reports(report, out, plot=args.plot)
    print("\n".join(filter(None, [built_in_note(args), summarize(report, [shown(path, out, args.out) for path in paths])])))
    return EXIT_DIVERGED if report.diverged else EXIT_MATCH
