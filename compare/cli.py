"""The `lstm-compare` command line; `python -m compare` is the same."""

import argparse
import importlib
import sys

from compare.errors import EXIT_UNUSABLE, UsageError
from references import ReferenceRefused

# Subcommand name -> module in compare.commands with HELP, add_arguments(parser) and execute(args).
COMMANDS = {"report": "compare.commands.report", "run": "compare.commands.run",
            "gradcheck": "compare.commands.gradcheck", "detect": "compare.commands.detect"}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (and exit 2), pointing at --help instead of the usage block."""

    def error(self, message):
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {message} (see {self.prog} --help).\n")


def build_parser():
    parser = OneLineParser(prog="lstm-compare", description="Locate where a hand-written NumPy LSTM "
                                     "departs from PyTorch and JAX: phase, step, gate, tensor.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(subparsers.add_parser(name, help=module.HELP, description=module.HELP))
        modules[name] = module
    return parser, modules


def main(argv=None):
    """Run one subcommand; returns (and exits with) 0 match, 1 divergence, 2 unusable input."""
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    try:
        code = modules[args.command].execute(args)
    except (UsageError, ReferenceRefused) as error:  # ReferenceRefused: e.g. too large for finite differences
        print(f"lstm-compare: error: {error}", file=sys.stderr)
        code = EXIT_UNUSABLE
    sys.exit(code)
