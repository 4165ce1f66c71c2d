"""Peak memory of `lstm-compare report` against the guard's estimate, per convention (issue 20's acceptance).

Each case runs as a whole CLI process (its peak RSS, children included, from getrusage) and is set beside the
estimate the memory guard makes for it (``limits.needed_bytes`` with the measured per-step cache, as the run
itself computes it).  Prints a Markdown table: convention, size, peak, estimate, peak / estimate.

Usage: python bench/bench_memory.py [--quick]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lstm_compare.lstm.problem import ProblemSpec  # noqa: E402
from lstm_compare.measuring.limits import needed_bytes  # noqa: E402
from lstm_compare.modes.pipeline import batch_resolved, step_cache_bytes  # noqa: E402
from lstm_compare.usercode.conventions import bind  # noqa: E402

HANDROLLED = ROOT / "lstm_compare" / "handrolled"
FILES = {"question": HANDROLLED / "question_lstm.py", "cs231n": HANDROLLED / "cs231n_lstm.py",
         "coursera": HANDROLLED / "coursera_lstm.py", "karpathy": HANDROLLED / "karpathy_lstm.py"}
SIZES = [ProblemSpec(steps=500, hidden=256, dtype="float32"), ProblemSpec(steps=3000, hidden=256, dtype="float32"),
         ProblemSpec(steps=1000, hidden=64, inputs=8, dtype="float32")]
QUICK = [ProblemSpec(steps=300, hidden=128, dtype="float32")]


def flags(spec: ProblemSpec) -> list[str]:
    out = ["--steps", str(spec.steps), "--hidden", str(spec.hidden), "--inputs", str(spec.inputs), "--dtype",
           spec.dtype]
    return out + ([] if spec.batch is None else ["--batch", str(spec.batch)])


def peak_rss(args: list[str]) -> float:
    """Peak RSS in MiB of the largest process of the command (its children included)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "LSTM_COMPARE_NO_CACHE": "1"})
    return int(out.stdout.strip()) / 1024  # KiB on Linux


def estimate(path: Path, spec: ProblemSpec) -> tuple[float, ProblemSpec]:
    binding = bind(path)
    spec = batch_resolved(binding, spec)
    return needed_bytes(spec, ("torch", "jax"), step_cache_bytes(binding, spec)) / 2**20, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print("| convention | problem | peak RSS | estimate | peak / estimate |")
    print("|---|---|---|---|---|")
    for spec in QUICK if args.quick else SIZES:
        for name, path in FILES.items():
            guess, resolved = estimate(path, spec)
            with tempfile.TemporaryDirectory() as out:
                peak = peak_rss([sys.executable, "-m", "lstm_compare", "report", "--impl", str(path), *flags(spec),
                                 "--out", out])
            print(f"| {name} | {resolved.label()} | {peak:.0f} MiB | {guess:.0f} MiB | {peak / guess:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
