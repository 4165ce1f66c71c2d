"""`lstm-compare report`: compare one implementation with the references and write the divergence reports."""

from compare.commands.common import add_problem_arguments, implementation_from_args, spec_from_args
from compare.engine import Config, run
from compare.errors import EXIT_DIVERGED, EXIT_MATCH
from compare.report import check_output_dir, write_reports
from compare.summary import summarize

HELP = "compare an LSTM with PyTorch and JAX and write divergence.csv and first_divergence.csv"


def parse_references(text):
    import argparse

    from references import MODULES

    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in MODULES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: choose one or more of {', '.join(MODULES)}")
    return names


def add_arguments(parser):
    add_problem_arguments(parser)
    parser.add_argument("--reference", type=parse_references, default=("torch", "jax"), metavar="torch,jax",
                        help="references to compare against (default: torch,jax)")
    parser.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    parser.add_argument("--plot", action="store_true",
                        help="also draw heatmap-<reference>-<mode>.png: log10(error / allowed) per step and tensor")


def execute(args):
    check_output_dir(args.out)
    report = run(implementation_from_args(args), Config(spec=spec_from_args(args), references=args.reference))
    paths = write_reports(report, args.out)
    if args.plot:
        from compare.plot import write_heatmaps

        paths = (*paths, *write_heatmaps(report, args.out))
    print(summarize(report, paths))
    return EXIT_DIVERGED if report.diverged else EXIT_MATCH
