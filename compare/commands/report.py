"""`lstm-compare report`: compare one implementation with the references and write the divergence reports."""

from compare.commands.common import (add_convention_argument, add_output_arguments, add_problem_arguments,
                                     implementation_from_args, spec_from_args)
from compare.engine import Config, run
from compare.errors import EXIT_DIVERGED, EXIT_MATCH
from compare.report import check_output_dir, write_reports
from compare.summary import summarize

HELP = "compare an LSTM with PyTorch and JAX and write divergence.csv and first_divergence.csv"


def add_arguments(parser):
    add_problem_arguments(parser)
    add_convention_argument(parser)
    add_output_arguments(parser, "also draw heatmap-<reference>-<mode>.png: log10(error / allowed) per step and tensor")


def execute(args):
    check_output_dir(args.out)
    config = Config(spec=spec_from_args(args), references=args.reference, convention=args.convention)
    report = run(implementation_from_args(args), config)
    paths = write_reports(report, args.out)
    if args.plot:
        from compare.plot import write_heatmaps

        paths = (*paths, *write_heatmaps(report, args.out))
    print(summarize(report, paths))
    return EXIT_DIVERGED if report.diverged else EXIT_MATCH
