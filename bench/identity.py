"""Byte-identity check: `lstm-compare report` of old code (a git revision) and of this tree, on many cases.

Each case runs as a whole CLI process twice (old, new); divergence.csv, first_divergence.csv, stdout and the exit
code must be byte-identical.  The old revision is exported with ``git archive`` into a cache folder and put first
on PYTHONPATH (the editable install's finder comes after the ordinary path search), and its outputs are cached, so
a second check reruns only the new code.

Usage: python bench/identity.py [--old d94b79d] [--work /tmp/lstm-compare-identity] [--quick] [--only SUBSTRING]
"""

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lstm_compare.catalogs.catalog import CATALOG  # noqa: E402
from lstm_compare.catalogs.conventions import CONVENTION_CATALOG  # noqa: E402
from lstm_compare.lstm.problem import ProblemSpec  # noqa: E402

FILES = ("divergence.csv", "first_divergence.csv")


def spec_flags(spec: ProblemSpec) -> list[str]:
    flags = ["--steps", str(spec.steps), "--hidden", str(spec.hidden), "--inputs", str(spec.inputs),
             "--outputs", str(spec.outputs), "--dtype", spec.dtype, "--seed", str(spec.seed)]
    flags += [] if spec.batch is None else ["--batch", str(spec.batch)]
    return flags + (["--zero-state"] if spec.zero_state else [])


def cases(bugs_dir: Path, quick: bool) -> dict[str, list[str]]:
    """name -> `report` arguments (without --out)."""
    hand = ROOT / "lstm_compare" / "handrolled"
    out: dict[str, list[str]] = {
        "default-f64": [],
        "default-f32": ["--dtype", "float32"],
        "T100-H64-X8-f64": ["--steps", "100", "--hidden", "64", "--inputs", "8"],
        "T100-H64-X8-f32-seed3": ["--steps", "100", "--hidden", "64", "--inputs", "8", "--dtype", "float32",
                                  "--seed", "3"],
        "T200-H16-f32-B4": ["--steps", "200", "--hidden", "16", "--inputs", "4", "--dtype", "float32",
                            "--batch", "4"],
        "T50-H7-B3-f64-zero": ["--steps", "50", "--hidden", "7", "--batch", "3", "--zero-state"],
        "T70-H5-X1-f64-seed6": ["--steps", "70", "--inputs", "1", "--seed", "6"],
        "T30-H9-O3-f32-zero": ["--steps", "30", "--hidden", "9", "--outputs", "3", "--dtype", "float32",
                               "--zero-state"],
        "T1-f64": ["--steps", "1"],
        "T300-H64-f32": ["--steps", "300", "--hidden", "64", "--inputs", "8", "--dtype", "float32"],
        "cs231n-B2": ["--impl", str(hand / "cs231n_lstm.py"), "--batch", "2"],
        "cs231n-f32-B4-T40": ["--impl", str(hand / "cs231n_lstm.py"), "--batch", "4", "--steps", "40",
                              "--dtype", "float32"],
        "coursera-B3": ["--impl", str(hand / "coursera_lstm.py"), "--batch", "3"],
        "coursera-f32-T40": ["--impl", str(hand / "coursera_lstm.py"), "--steps", "40", "--dtype", "float32"],
        "karpathy-B2": ["--impl", str(hand / "karpathy_lstm.py"), "--batch", "2"],
        "karpathy-f32-T40-H20": ["--impl", str(hand / "karpathy_lstm.py"), "--steps", "40", "--hidden", "20",
                                 "--dtype", "float32"],
    }
    if not quick:
        out["T1000-H256-X64-f32"] = ["--steps", "1000", "--hidden", "256", "--inputs", "64", "--dtype", "float32"]
        out["T3000-H64-X8-f32"] = ["--steps", "3000", "--hidden", "64", "--inputs", "8", "--dtype", "float32"]
        out["T200-H512-X8-f32"] = ["--steps", "200", "--hidden", "512", "--inputs", "8", "--dtype", "float32"]
        out["T200-H32-B32-f32"] = ["--steps", "200", "--hidden", "32", "--inputs", "8", "--dtype", "float32",
                                   "--batch", "32"]
    bugs = CATALOG + CONVENTION_CATALOG
    for bug in bugs if not quick else bugs[::4]:
        path = bug.write(bugs_dir)
        out[f"bug-{bug.name}"] = ["--impl", str(path), *spec_flags(bug.spec)]
    for bug in (CATALOG[::5] if not quick else CATALOG[:1]):  # the same bugs in float32, longer, batched
        path = bug.write(bugs_dir)
        spec = ProblemSpec(steps=60, hidden=12, inputs=4, outputs=max(bug.spec.outputs, 2), dtype="float32",
                           batch=3, seed=1)
        out[f"bug32-{bug.name}"] = ["--impl", str(path), *spec_flags(spec)]
    return out


def run_case(python_path: Path, args: list[str], out: Path) -> tuple[int, bytes]:
    """Run one report into ``out``: (exit code, stdout with the out folder's name replaced)."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(python_path), "LSTM_COMPARE_NO_CACHE": "1"}
    package = "lstm_compare" if (python_path / "lstm_compare").is_dir() else "compare"  # the name before issue 17
    result = subprocess.run([sys.executable, "-m", package, "report", *args, "--out", str(out)], env=env,
                            capture_output=True, cwd=python_path)
    (out / "stderr.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "stderr.txt").write_bytes(result.stderr)
    stdout = result.stdout.replace(str(out).encode(), b"<out>")
    # The built-in file's name in the first line is how each revision names it (a module before issue 17, a path
    # after): compared as <impl>; every other byte of stdout, and both CSVs, are compared as they are.
    return result.returncode, re.sub(rb"^lstm-compare: .*? against ", b"lstm-compare: <impl> against ", stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="64bf6c7")
    parser.add_argument("--work", default="/tmp/lstm-compare-identity")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    work = Path(args.work)
    old_tree = work / f"tree-{args.old}"
    if not old_tree.exists():
        old_tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
    bugs_dir = work / "bugs"
    bugs_dir.mkdir(parents=True, exist_ok=True)
    differing = []
    selected = {name: a for name, a in cases(bugs_dir, args.quick).items() if args.only in name}
    for name, case_args in selected.items():
        old_out, new_out = work / f"old-{args.old}" / name, work / "new" / name
        if not (old_out / "done").exists():
            code, stdout = run_case(old_tree, case_args, old_out)
            (old_out / "stdout.txt").write_bytes(stdout)
            (old_out / "done").write_text(str(code))
        code, stdout = run_case(ROOT, case_args, new_out)
        (new_out / "stdout.txt").write_bytes(stdout)
        same = code == int((old_out / "done").read_text())
        for file in (*FILES, "stdout.txt"):
            a, b = old_out / file, new_out / file
            same &= a.exists() == b.exists() and (not a.exists() or filecmp.cmp(a, b, shallow=False))
        print(f"{'same' if same else 'DIFFERENT':9} exit {code}  {name}", flush=True)
        if not same:
            differing.append(name)
    print(f"{len(selected) - len(differing)} of {len(selected)} cases byte-identical"
          + (f"; different: {', '.join(differing)}" if differing else ""))
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
