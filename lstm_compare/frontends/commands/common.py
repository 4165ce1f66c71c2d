"""Flags shared by the subcommands that draw a problem: sizes, dtype, seed, initial state."""

import argparse
import os
from pathlib import Path
from typing import Callable, Iterable

from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.lstm.model import Model
from lstm_compare.output.atomic import check_output_dir


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``minimum``, or one clear sentence."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum of {minimum}")
        return value
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def add_problem_arguments(parser: argparse.ArgumentParser, steps: int = 12, hidden: int = 5, inputs: int = 3,
                          outputs: int = 1) -> None:
    parser.add_argument("--impl", metavar="FILE.py",
                        help="your LSTM file (default: this project's own, handrolled/question_lstm.py)")
    parser.add_argument("--steps", type=positive_int, default=steps, metavar="T", help=f"sequence length ({steps})")
    parser.add_argument("--hidden", type=positive_int, default=hidden, metavar="H", help=f"hidden size ({hidden})")
    parser.add_argument("--inputs", type=positive_int, default=inputs, metavar="X", help=f"input size ({inputs})")
    parser.add_argument("--outputs", type=positive_int, default=outputs, metavar="O",
                        help=f"output size ({outputs})")
    parser.add_argument("--batch", type=positive_int, default=None, metavar="B",
                        help="batch size, for implementations that take (B, X) batches (default: unbatched)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="N")
    parser.add_argument("--zero-state", action="store_true", help="start from h0 = c0 = 0 (default: random)")
    model = parser.add_argument_group("model variants (references/model.py; default: one layer, one direction)")
    model.add_argument("--layers", type=positive_int, default=1, metavar="L", help="stacked layers (1)")
    model.add_argument("--bidirectional", action="store_true", help="a reverse direction in every layer")
    model.add_argument("--proj", type=non_negative_int, default=0, metavar="P",
                       help="projection size, h = (o * tanh c) @ Wr with 0 < P < H (default 0: none)")
    model.add_argument("--peepholes", action="store_true", help="peephole weights pf, pi, po on the cell state")


def add_convention_argument(parser: argparse.ArgumentParser) -> None:
    """--convention, shared by report and run."""
    from lstm_compare.usercode.conventions import CHOICES

    parser.add_argument("--convention", choices=CHOICES, default="auto",
                        help="how --impl is written (default: auto, detected from the names it defines)")


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
                        help="references to compare against (default: torch,jax)")
    parser.add_argument("--out", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    parser.add_argument("--plot", action="store_true", help=plot_help)
    parser.add_argument("--no-cache", action="store_true",
                        help="compile JAX and the measurement kernels afresh, without the per-user cache "
                             "($XDG_CACHE_HOME/lstm-compare, default ~/.cache/lstm-compare; also "
                             "LSTM_COMPARE_NO_CACHE=1)")


def spec_from_args(args: argparse.Namespace) -> ProblemSpec:
    model = Model(args.layers, args.bidirectional, args.proj, args.peepholes)
    return ProblemSpec(steps=args.steps, hidden=args.hidden, inputs=args.inputs, outputs=args.outputs,
                       batch=args.batch, dtype=args.dtype, seed=args.seed, zero_state=args.zero_state, model=model)


def implementation_from_args(args: argparse.Namespace) -> str | Path:
    """The --impl path, or the project's own handrolled module: for a model variant, its variant model."""
    if args.impl:
        return args.impl
    variant = hasattr(args, "layers") and not spec_from_args(args).model.plain
    return own_implementation(variant)


def own_implementation(variant: bool = False) -> Path:
    """The project's own LSTM file, read as a user's file is: the question's cell (``handrolled/question_lstm.py``), or
    with ``variant`` the model that also has peepholes, a projection and whole-model functions
    (``handrolled/variant_lstm.py``)."""
    return Path(__file__).resolve().parents[2] / "handrolled" / ("variant_lstm.py" if variant else "question_lstm.py")


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
