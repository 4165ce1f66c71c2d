"""Benchmark: a full report (both references, all modes) against the work no comparison can avoid.

For each configuration, two fresh processes:
  report       imports + ``compare.run`` on the handrolled LSTM; then, warm, the bare forward+backward of
               each implementation (handrolled, torch nn.LSTM, torch instrumented, jax) in the same process;
  unavoidable  imports + one forward+backward of each implementation (handrolled, torch nn.LSTM, jax incl.
               its compile) + the float64 reference runs that a float32 comparison needs.
Prints wall times, their ratio and peak memory (max RSS).  Usage: python bench/bench_report.py [--only small|large]
"""

import argparse
import json
import subprocess
import sys
import textwrap

CONFIGS = {
    "small": dict(steps=100, hidden=64, inputs=8, outputs=1, dtype="float64"),
    "large": dict(steps=1000, hidden=256, inputs=64, outputs=1, dtype="float32"),
}

COMMON = """
import json, resource, sys, time
start = time.perf_counter()
import numpy as np, torch, jax
import handrolled
from compare import Config, ProblemSpec, make_problem, run
from references import jax_lstm, torch_lstm
spec = ProblemSpec(**json.loads(sys.argv[1]))
imported = time.perf_counter()

def timed(function, *args):
    t0 = time.perf_counter()
    function(*args)
    return time.perf_counter() - t0

def handrolled_fwd_bwd(problem):
    _, outputs, _, _, _, caches = handrolled.lstm_loss(problem.params, problem.h0, problem.c0, problem.inputs,
                                                       problem.targets)
    handrolled.dlstm_loss(problem.params, problem.inputs, problem.targets, outputs, caches)

truth = make_problem(spec)
problem = truth.astype(np.dtype(spec.dtype))
"""

REPORT = COMMON + """
report = run(handrolled, Config(spec=spec))
done = time.perf_counter()
bare = {"handrolled": timed(handrolled_fwd_bwd, problem), "torch nn.LSTM": timed(torch_lstm.official, problem),
        "torch instrumented": timed(torch_lstm.trace, problem), "jax (warm)": timed(jax_lstm.trace, problem)}
print(json.dumps({"imports": imported - start, "report": done - imported, "total": done - start,
                  "diverged": report.diverged, "bare": bare,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

UNAVOIDABLE = COMMON + """
parts = {"handrolled": timed(handrolled_fwd_bwd, problem), "torch nn.LSTM": timed(torch_lstm.official, problem),
         "jax (with compile)": timed(jax_lstm.trace, problem)}
if spec.dtype != "float64":
    parts["torch float64"] = timed(torch_lstm.official, truth)
    parts["jax float64 (with compile)"] = timed(jax_lstm.trace, truth)
done = time.perf_counter()
print(json.dumps({"imports": imported - start, "parts": parts, "total": done - start,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(script, config):
    result = subprocess.run([sys.executable, "-c", script, json.dumps(config)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CONFIGS))
    args = parser.parse_args()
    for name, config in CONFIGS.items():
        if args.only and name != args.only:
            continue
        label = f"T={config['steps']} H={config['hidden']} X={config['inputs']} {config['dtype']}"
        floor = measure(UNAVOIDABLE, config)
        full = measure(REPORT, config)
        print(f"{label}")
        print(f"  full report      {full['total']:7.2f} s  (imports {full['imports']:.2f} s, "
              f"comparison {full['report']:.2f} s, peak RSS {full['max_rss_mib']:.0f} MiB, "
              f"diverged={full['diverged']})")
        print(f"  unavoidable      {floor['total']:7.2f} s  (imports {floor['imports']:.2f} s, "
              f"peak RSS {floor['max_rss_mib']:.0f} MiB)")
        print(textwrap.indent("\n".join(f"{k:<28}{v:7.3f} s" for k, v in floor["parts"].items()), "    "))
        print(f"  ratio            {full['total'] / floor['total']:7.2f}x  (goal: 1.5x)")
        print("  bare forward+backward, warm, in the report's process:")
        print(textwrap.indent("\n".join(f"{k:<28}{v:7.3f} s" for k, v in full["bare"].items()), "    "))


if __name__ == "__main__":
    main()
