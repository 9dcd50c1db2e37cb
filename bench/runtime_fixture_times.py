"""Time `dllint confirm` on every runtime script of the test suite, one after the other.

For each run (the same arguments as tests/test_runtime.py, JSON output) prints the exit status, the run's
status and steps, the wall time and the CPU time of the whole process tree (the parent, the child, its
DataLoader workers: user + system, from the children's resource usage); then the medians. CPU time is
the figure to compare across machines and load; wall time on a shared machine is mostly waiting.

    python bench/runtime_fixture_times.py [--repeats 3] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.test_runtime import RUNS, SCRIPTS  # noqa: E402  (the suite's own list of runs)

# Runs that wait for a timeout on purpose: their time measures the timeout, not the instrumentation.
WAITING = {"infinite_loop", "hung_with_workers"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    output = [] if "--format" in args else ["--format", "json"]
    cpu, started = children_cpu(), time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "dllint", "confirm", *output, *args], cwd=SCRIPTS,
                               capture_output=True, text=True, env=env, timeout=300)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    try:
        run = json.loads(completed.stdout)["run"]
        status = f"{run['status']}, {run['steps']} steps"
    except (ValueError, KeyError):
        status = "text output"
    return completed.returncode, status, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="runs to time (default: all but those waiting for a timeout)")
    parser.add_argument("--repeats", type=int, default=1)
    options = parser.parse_args()
    names = options.names or [name for name in RUNS if name not in WAITING]
    medians_cpu, medians_wall = [], []
    for name in names:
        results = [run_once(RUNS[name]) for _ in range(options.repeats)]
        wall = statistics.median(r[2] for r in results)
        cpu = statistics.median(r[3] for r in results)
        medians_cpu.append(cpu)
        medians_wall.append(wall)
        print(f"{name:32s} exit {results[0][0]}  {results[0][1]:24s} wall {wall:5.1f} s  cpu {cpu:5.1f} s", flush=True)
    print(f"median over {len(names)} runs: cpu {statistics.median(medians_cpu):.1f} s, wall "
          f"{statistics.median(medians_wall):.1f} s; slowest cpu {max(medians_cpu):.1f} s")


if __name__ == "__main__":
    main()
