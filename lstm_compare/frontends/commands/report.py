"""`lstm-compare report`: compare one implementation with the references and write the divergence reports."""

import argparse

from lstm_compare.frontends.commands.common import (add_convention_argument, add_output_arguments,
                                                     add_problem_arguments, implementation_from_args, output_dir, shown,
                                                     spec_from_args)
from lstm_compare.modes.records import Config
from lstm_compare.modes.pipeline import run
from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH
from lstm_compare.measuring.limits import check_fits
from lstm_compare.output.report import DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV, write_reports
from lstm_compare.output.summary import summarize

HELP = "compare an LSTM with PyTorch and JAX and write divergence.csv and first_divergence.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser)
    add_convention_argument(parser)
    add_output_arguments(parser, "also draw heatmap-<reference>-<mode>.png: log10(error / allowed) per step and tensor")


def execute(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    check_fits(spec, args.reference)
    out = output_dir(args, (DIVERGENCE_CSV, FIRST_DIVERGENCE_CSV))
    config = Config(spec=spec, references=args.reference, convention=args.convention)
    report = run(implementation_from_args(args), config)
    paths = write_reports(report, out, plot=args.plot)
    print(summarize(report, [shown(path, out, args.out) for path in paths]))
    return EXIT_DIVERGED if report.diverged else EXIT_MATCH
