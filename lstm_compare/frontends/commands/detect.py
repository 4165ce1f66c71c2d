"""`lstm-compare detect`: which convention a file follows, and which weight layout its forward step really uses."""

import argparse

from lstm_compare.frontends.commands.common import add_convention_argument, add_impl_argument, implementation_from_args
from lstm_compare.usercode.detect import run_detection, summarize
from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH

HELP = ("say which convention your LSTM file follows and why, and find the weight layout its forward step really "
        "uses (gate order, what the weights act on)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_impl_argument(parser)
    add_convention_argument(parser)


def execute(args: argparse.Namespace) -> int:
    detection = run_detection(implementation_from_args(args), args.convention)
    print(summarize(detection))
    return EXIT_MATCH if detection.ok else EXIT_DIVERGED
