"""Flags shared by the subcommands that draw a problem: sizes, dtype, seed, initial state."""

import argparse
import os
from pathlib import Path
from typing import Callable, Iterable

from lstm_compare import caching
from lstm_compare.choices import whole_number_fault
from lstm_compare.lstm.problem import KEYWORDS, PROBLEM_KEYWORDS, ProblemSpec
from lstm_compare.output.atomic import check_output_dir


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``, or the sentence ``ProblemSpec`` says."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        fault = whole_number_fault(value, minimum)
        if fault:
            raise argparse.ArgumentTypeError(fault)
        return value
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)

IMPL_HELP = "your LSTM file, in any convention (default: the tool's own, lstm_compare/handrolled/question_lstm.py)"


def add_impl_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--impl", metavar="FILE.py", help=IMPL_HELP)


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """--impl, then a flag per problem keyword (``ProblemSpec``'s fields, then its model's: --steps, ..., --layers)."""
    add_impl_argument(parser)
    model = parser.add_argument_group("model variants (default: one layer, one direction)")
    for keyword in KEYWORDS.values():
        group = model if keyword.model else parser
        default = "" if keyword.default is None or keyword.default is False else f" ({keyword.default})"
        if keyword.choices:
            group.add_argument(keyword.flag, choices=keyword.choices, default=keyword.default,
                               help=f"{keyword.help}{default}")
        elif keyword.minimum is not None:
            group.add_argument(keyword.flag, type=_int_at_least(keyword.minimum), default=keyword.default,
                               metavar=keyword.metavar, help=f"{keyword.help}{default}")
        else:
            group.add_argument(keyword.flag, action="store_true", help=keyword.help)


def add_convention_argument(parser: argparse.ArgumentParser) -> None:
    """--convention, shared by report and run."""
    from lstm_compare.usercode.conventions import CHOICES

    parser.add_argument("--convention", choices=CHOICES, default="auto",
                        help="how your file is written: question (the original question's lstm/dlstm), cs231n, "
                             "coursera, karpathy, or declared in the file (default: auto, from the names it defines)")


def parse_references(text: str) -> tuple[str, ...]:
    """An argparse type: a comma-separated list of reference names."""
    from lstm_compare.references import MODULES

    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))  # once each
    unknown = [name for name in names if name not in MODULES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: choose one or more of {', '.join(MODULES)}")
    return names


def add_output_arguments(parser: argparse.ArgumentParser, plot_help: str) -> None:
    """--reference, --out and --plot, shared by report and run."""
    parser.add_argument("--reference", type=parse_references, default=("torch", "jax"), metavar="torch,jax",
                        help="references to compare against, comma-separated: torch, jax, numeric (finite "
                             "differences, for small problems) (default: torch,jax)")
    parser.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    parser.add_argument("--plot", action="store_true", help=plot_help)
    parser.add_argument("--no-cache", action="store_true",
                        help=f"compile JAX and the measurement kernels afresh, without the per-user cache "
                             f"({caching.cache_dir()}; also LSTM_COMPARE_NO_CACHE=1)")


def spec_from_args(args: argparse.Namespace) -> ProblemSpec:
    """The problem the flags describe (a wrong combination, such as --proj 5 with --hidden 5, is a UsageError)."""
    return ProblemSpec.of(**{name: getattr(args, name) for name in PROBLEM_KEYWORDS})


def implementation_from_args(args: argparse.Namespace) -> str:
    """The --impl path, or the path of the tool's own LSTM file: for a model variant, its variant model."""
    if args.impl:
        return str(args.impl)
    variant = hasattr(args, "layers") and not spec_from_args(args).model.plain
    return own_implementation(variant)


def own_implementation(variant: bool = False) -> str:
    """The path of the tool's own LSTM file, loaded as a user's file is: the question's cell
    (``lstm_compare/handrolled/question_lstm.py``), or with ``variant`` the model that also has peepholes, a
    projection and whole-model functions (``variant_lstm.py``)."""
    return str(Path(__file__).resolve().parents[2] / "handrolled" / ("variant_lstm.py" if variant else "question_lstm.py"))


def built_in_note(args: argparse.Namespace) -> str | None:
    """The first line a command run without --impl prints (with its summary, once the work is done, so that an
    unusable input still prints nothing on stdout): which built-in file it checks."""
    if args.impl:
        return None
    return f"lstm-compare: no --impl given, so this checks the tool's own LSTM, {implementation_from_args(args)}"


def output_dir(args: argparse.Namespace, names: Iterable[str] = ()) -> Path:
    """--out as an absolute path, fixed once at the start (code that calls ``os.chdir`` cannot move it), and
    checked before any work: a folder that is a file, a report name that is a folder, or no write permission
    is a UsageError (exit 2).  ``names``: the files the command writes there."""
    out = Path(os.path.abspath(args.out))
    check_output_dir(out, names)
    return out


def shown(path: str | os.PathLike[str], out: str | os.PathLike[str], text: str | os.PathLike[str]) -> str:
    """A written path as the user named its folder (``reports/divergence.csv`` for ``--out reports``)."""
    return str(Path(text) / Path(path).relative_to(out))
