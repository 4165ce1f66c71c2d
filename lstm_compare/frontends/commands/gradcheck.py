"""`lstm-compare gradcheck`: an implementation's analytic gradients against central differences of its own loss."""

import argparse

from lstm_compare.errors import EXIT_DIVERGED, EXIT_MATCH
from lstm_compare.frontends.commands.common import (add_convention_argument, add_problem_arguments, built_in_note,
                                                    implementation_from_args, positive_int, spec_from_args)
from lstm_compare.frontends.progress import progress
from lstm_compare.modes.gradcheck import MAX_ENTRIES, gradcheck, summarize

HELP = ("check your LSTM's analytic parameter gradients against central differences of its loss (its own, or the "
        "harness's for code without one; float64, from the same initial state)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_problem_arguments(parser)
    add_convention_argument(parser)
    parser.add_argument("--max-entries", type=positive_int, default=MAX_ENTRIES, metavar="N",
                        help=f"check every parameter entry up to N in all, else a seeded sample of N ({MAX_ENTRIES})")


def execute(args: argparse.Namespace) -> int:
    spec, impl = spec_from_args(args), implementation_from_args(args)
    with progress(f"checking the gradients of {impl} ({spec.label()})"):
        result = gradcheck(impl, spec, max_entries=args.max_entries, convention=args.convention)
    print("\n".join(filter(None, [built_in_note(args), summarize(result)])))
    return EXIT_MATCH if result.passed else EXIT_DIVERGED
