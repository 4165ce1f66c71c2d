"""The `lstm-compare` command line; `python -m lstm_compare` is the same."""

import argparse
import importlib
import math
import os
import sys
from types import ModuleType
from typing import NoReturn, Sequence

from lstm_compare import caching
from lstm_compare.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_OUTPUT_CLOSED, EXIT_UNUSABLE, UsageError
from lstm_compare.output.text import cut, one_line
from lstm_compare.usercode.timelimit import DEFAULT_TIMEOUT, time_limit

# Subcommand name -> module in lstm_compare.frontends.commands with HELP, add_arguments(parser) and execute(args).
COMMANDS = {name: f"lstm_compare.frontends.commands.{name}" for name in ("report", "run", "gradcheck", "detect")}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (and exit 2), pointing at --help instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_UNUSABLE, f"{self.prog}: error: {cut(one_line(message))} (see {self.prog} --help).\n")


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive, finite number of seconds")
    return value


def exit_code_table() -> str:
    """The --help epilog: every exit code and what it means (lstm_compare.errors.EXIT_CODES)."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)


def build_parser() -> tuple[OneLineParser, dict[str, ModuleType]]:
    from lstm_compare import __version__

    parser = OneLineParser(prog="lstm-compare", description="Locate where your hand-written NumPy LSTM "
                                     "departs from PyTorch and JAX: phase, step, gate, tensor.",
                           epilog=exit_code_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lstm-compare {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules: dict[str, ModuleType] = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        subparser = subparsers.add_parser(name, help=module.HELP, description=module.HELP, allow_abbrev=False,
                                          epilog=exit_code_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(subparser)
        subparser.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                               help=f"the longest one call of your code may take ({DEFAULT_TIMEOUT:g}); "
                                    "longer is a finding at its mode, phase and step")
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run one subcommand; exits with a code of ``lstm_compare.errors.EXIT_CODES``.

    As a program (``argv`` None) the work runs in a child process that ``lstm_compare.usercode.supervise`` watches, so
    that ``os._exit``, a crash or a call stuck in compiled code in the user's file cannot end or hang the tool. Called
    with ``argv`` (tests), it runs in this process.
    """
    if argv is None:
        from lstm_compare import caching
        from lstm_compare.usercode import supervise

        caching.mark_program()  # this process is the program: its on-disk caches may be used (not the tests')
        supervise.run(lambda: execute(sys.argv[1:]))
    sys.exit(execute(argv))


def execute(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run its subcommand: the exit code, after one line on stderr for an unusable input or
    an interruption (argparse's own errors and --help leave through SystemExit)."""
    try:  # NumPy and the rest: after the program's first lines, and a Ctrl-C while they import is one line too
        from lstm_compare.references import ReferenceRefused
        from lstm_compare.usercode.isolation import isolated
    except KeyboardInterrupt:
        print("lstm-compare: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        parser, modules = build_parser()
        args = parser.parse_args(argv)
        if hasattr(args, "no_cache") and caching.wanted(args.no_cache):  # report and run
            caching.enable(jax_too="jax" in args.reference)
        with time_limit(args.timeout), isolated():
            return modules[args.command].execute(args)
    except (UsageError, ReferenceRefused) as error:  # ReferenceRefused: e.g. too large for finite differences
        print(f"lstm-compare: error: {cut(one_line(error))}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("lstm-compare: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of the output stopped reading (`| head`): stop there, quietly
        _discard_stdout()
        return EXIT_OUTPUT_CLOSED


def _discard_stdout() -> None:
    """Point standard output at the null device, so that flushing what is still buffered fails no more."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no file descriptor behind sys.stdout: nothing to flush there
        pass
