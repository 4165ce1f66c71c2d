"""Benchmark: `lstm-compare report` end to end (CSVs written) against the work no comparison can avoid.

Every figure is a whole process, started fresh:
  report       `python -m lstm_compare report ... --out TMP --no-cache` on the handrolled LSTM: imports, both
               references, every mode, both CSVs written (cold: nothing compiled is reused);
  report warm  the same with the per-user caches on, in a folder primed by one earlier run (what a person
               debugging sees the second time: JAX's and the kernels' compiled code read back);
  floor        imports + one forward+backward of each implementation (handrolled, torch nn.LSTM, jax incl. its
               compile) + the float64 reference runs that a float32 comparison needs.
Runs alternate (floor, report, report warm) for --pairs rounds; medians of wall time and of CPU time (user + sys
of the process and its children, from wait4), and the peak RSS.  Then, at T=100 H=64 X=8 float64, what a user
runs instead, in the same session: torch.autograd.gradcheck(fast_mode=True) and jax.test_util.check_grads, each
a whole process.  Last, the memory cases (one run each): peak RSS over the floor at T=3000 H=512 float32 and at
batch 32.

Usage: python bench/bench_report.py [--pairs 5] [--only NAME] [--skip-memory] [--json FILE]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = {
    "T100-H64-X8-f64": dict(steps=100, hidden=64, inputs=8, dtype="float64"),
    "T1000-H256-X64-f32": dict(steps=1000, hidden=256, inputs=64, dtype="float32"),
    "T3000-H64-X8-f32": dict(steps=3000, hidden=64, inputs=8, dtype="float32"),
    "T200-H512-X8-f32": dict(steps=200, hidden=512, inputs=8, dtype="float32"),
}
MEMORY = {
    "T3000-H512-X8-f32": dict(steps=3000, hidden=512, inputs=8, dtype="float32"),
    "T200-H64-X8-B32-f32": dict(steps=200, hidden=64, inputs=8, dtype="float32", batch=32),
}

FLOOR = """
import json, sys
import numpy as np, torch, jax
from lstm_compare import handrolled
from lstm_compare import ProblemSpec, make_problem
from lstm_compare.references import jax_lstm, torch_lstm
spec = ProblemSpec(**json.loads(sys.argv[1]))
truth = make_problem(spec)
problem = truth.astype(np.dtype(spec.dtype))
_, outputs, _, _, _, caches = handrolled.lstm_loss(problem.params, problem.h0, problem.c0, problem.inputs,
                                                   problem.targets)
handrolled.dlstm_loss(problem.params, problem.inputs, problem.targets, outputs, caches)
torch_lstm.official(problem)
jax_lstm.trace(problem)
if spec.dtype != "float64":
    torch_lstm.official(truth)
    jax_lstm.trace(truth)
"""

GRADCHECK = """
import json, sys
import numpy as np, torch
from lstm_compare import ProblemSpec, make_problem
from lstm_compare.references.layout import internal_to_torch
problem = make_problem(ProblemSpec(**json.loads(sys.argv[1])))
X, H, O = problem.inputs.shape[-1], problem.h0.shape[-1], problem.targets.shape[-1]
state = {k: torch.tensor(v, requires_grad=True) for k, v in internal_to_torch(problem.params).items()}
names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")
x, target = torch.tensor(problem.inputs), torch.tensor(problem.targets)
h0, c0 = torch.tensor(problem.h0[None]), torch.tensor(problem.c0[None])

lstm = torch.nn.LSTM(X, H, dtype=torch.float64)

def loss(w_ih, w_hh, b_ih, b_hh, w_y, b_y):
    weights = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
    out, _ = torch.func.functional_call(lstm, weights, (x, (h0, c0)))
    y = out @ w_y.T + b_y
    return ((y - target) ** 2).mean(dim=-1).sum()

assert torch.autograd.gradcheck(loss, tuple(state[k] for k in names), fast_mode=True)
"""

CHECK_GRADS = """
import json, sys
import numpy as np, jax, jax.numpy as jnp
from jax.test_util import check_grads
from lstm_compare import ProblemSpec, make_problem
from lstm_compare.references import jax_lstm
problem = make_problem(ProblemSpec(**json.loads(sys.argv[1])))
T, H = problem.steps, problem.h0.shape[-1]
probes = {k: np.zeros((T, problem.targets.shape[-1] if k == "y" else H)) for k in jax_lstm.PROBES}
with jax_lstm._enable_x64(True):
    loss = lambda params: jax_lstm._loss(params, problem.inputs, problem.h0, problem.c0, probes, problem.targets)[0]
    check_grads(loss, ({k: jnp.asarray(v) for k, v in problem.params.items()},), order=1, modes=["rev"])
"""


def spec_flags(config: dict) -> list[str]:
    flags = ["--steps", str(config["steps"]), "--hidden", str(config["hidden"]), "--inputs", str(config["inputs"]),
             "--dtype", config["dtype"]]
    return flags + (["--batch", str(config["batch"])] if "batch" in config else [])


def timed(command: list[str], env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run ``command`` to the end: wall seconds, CPU seconds (user + sys, children included), peak RSS MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {error[-2000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def report_command(config: dict, out: str, cache: bool) -> list[str]:
    return [sys.executable, "-m", "lstm_compare", "report", *spec_flags(config), "--out", out,
            *([] if cache else ["--no-cache"])]


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def bench_config(name: str, config: dict, pairs: int, cache_home: str) -> dict:
    """``pairs`` rounds of floor, report (cold), report (warm cache), alternated."""
    env = {**os.environ, "XDG_CACHE_HOME": cache_home}
    env.pop("LSTM_COMPARE_NO_CACHE", None)
    spec = json.dumps({k: v for k, v in config.items()})
    with tempfile.TemporaryDirectory() as out:
        timed(report_command(config, out, cache=True), env)  # primes the warm cache (and the page cache)
        runs: dict[str, list[dict]] = {"floor": [], "report": [], "report warm": []}
        for _ in range(pairs):
            runs["floor"].append(timed([sys.executable, "-c", FLOOR, spec]))
            runs["report"].append(timed(report_command(config, out, cache=False), env))
            runs["report warm"].append(timed(report_command(config, out, cache=True), env))
    result = {kind: {key: median(r, key) for key in ("wall", "cpu", "rss")} for kind, r in runs.items()}
    result["runs"] = runs
    return result


def print_config(name: str, result: dict) -> None:
    floor = result["floor"]
    print(f"{name}  (medians of {len(result['runs']['floor'])} alternated rounds)")
    for kind in ("floor", "report", "report warm"):
        r = result[kind]
        ratio = "" if kind == "floor" else (f"  ratio wall {r['wall'] / floor['wall']:.2f}x  "
                                            f"cpu {r['cpu'] / floor['cpu']:.2f}x  "
                                            f"RSS over floor {r['rss'] - floor['rss']:+.0f} MiB")
        print(f"  {kind:<12} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  peak RSS {r['rss']:5.0f} MiB{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="alternated rounds per configuration (5)")
    parser.add_argument("--only", help="one configuration name (substring)")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the memory cases")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    results: dict = {}
    with tempfile.TemporaryDirectory() as cache_home:
        for name, config in CONFIGS.items():
            if args.only and args.only not in name:
                continue
            results[name] = bench_config(name, config, args.pairs, cache_home)
            print_config(name, results[name])
        if not args.only or args.only in "T100-H64-X8-f64":
            small = json.dumps(CONFIGS["T100-H64-X8-f64"])
            others: dict[str, list[dict]] = {"gradcheck fast": [], "check_grads": []}
            for _ in range(args.pairs):
                others["gradcheck fast"].append(timed([sys.executable, "-c", GRADCHECK, small]))
                others["check_grads"].append(timed([sys.executable, "-c", CHECK_GRADS, small]))
            results["pass/fail"] = {k: {key: median(r, key) for key in ("wall", "cpu", "rss")}
                                    for k, r in others.items()}
            print("T100-H64-X8-f64, what a user runs instead (whole processes, medians):")
            report = results.get("T100-H64-X8-f64")
            for kind, r in results["pass/fail"].items():
                versus = ""
                if report:
                    versus = (f"  report / this: cold {report['report']['wall'] / r['wall']:.2f}x, "
                              f"warm {report['report warm']['wall'] / r['wall']:.2f}x")
                print(f"  {kind:<15} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s{versus}")
        if not args.skip_memory and not args.only:
            for name, config in MEMORY.items():
                spec = json.dumps(config)
                with tempfile.TemporaryDirectory() as out:
                    floor = timed([sys.executable, "-c", FLOOR, spec])
                    report = timed(report_command(config, out, cache=False))
                results[name] = {"floor": floor, "report": report}
                print(f"{name}  peak RSS: report {report['rss']:.0f} MiB, floor {floor['rss']:.0f} MiB, over the "
                      f"floor {report['rss'] - floor['rss']:+.0f} MiB (goal <= 256); wall {report['wall']:.1f} s "
                      f"vs {floor['wall']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
