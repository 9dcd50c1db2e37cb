"""Per-step overhead of `dllint confirm`'s instrumentation against the plain script.

Runs one training script twice, as plain `python script.py` and under the runtime child (all hooks,
loss/clamp/dropout wrappers, and line coverage kept active the whole run: the worst case), and compares
the median time of an optimizer step (forward, loss, backward, step), measured by the script itself.

    python bench/runtime_overhead.py [--model cnn|mlp|both] [--steps 200] [--repeats 8] [--device cpu|cuda]

The target in the issue is under 30% per step. Tiny models are the worst case: their steps take well
under a millisecond, so fixed per-call costs weigh most.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAINING_SCRIPT = textwrap.dedent('''\
    import json
    import sys
    import time

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    model_name, steps, output, device = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.manual_seed(0)
    if model_name == "cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10))
        batches = [(torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))) for _ in range(8)]
    else:
        model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 64), nn.ReLU(),
                              nn.Linear(64, 10))
        batches = [(torch.randn(64, 32), torch.randint(0, 10, (64,))) for _ in range(8)]
    model = model.to(device)
    batches = [(x.to(device), y.to(device)) for x, y in batches]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    durations = []
    for step in range(steps):
        x, y = batches[step % len(batches)]
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        running = loss.item()  # waits for the GPU too, so the step is timed whole
        durations.append(time.perf_counter() - started)
    with open(output, "w") as handle:
        json.dump(durations, handle)


    def evaluate():  # never called: keeps the line tracer busy for the whole run (the worst case)
        model.eval()
    ''')


def run_plain(script: str, model: str, steps: int, output: str, env, device: str) -> None:
    subprocess.run([sys.executable, script, model, str(steps), output, device], check=True, env=env)


def run_instrumented(script: str, model: str, steps: int, output: str, env, workspace: str, device: str) -> None:
    never_reached = len(TRAINING_SCRIPT.splitlines())  # the body of evaluate()
    config = {
        "mode": "script", "script": script, "args": [model, str(steps), output, device], "steps": steps + 10,
        "device": device, "timeout": 600, "user_root": os.path.dirname(script),
        "excluded_dirs": [os.path.join(ROOT, "dllint")], "targets": {script: [never_reached]},
        "output": os.path.join(workspace, "observations.json"),
    }
    config_path = os.path.join(workspace, "config.json")
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    subprocess.run([sys.executable, "-m", "dllint.runtime.process.child", config_path], check=True, env=env)


def median_step(path: str, warmup: int) -> float:
    with open(path) as handle:
        durations = json.load(handle)
    return statistics.median(durations[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["cnn", "mlp", "both"], default="both")
    parser.add_argument("--steps", type=int, default=200)
    # Steps on a shared machine drift by ±20% for seconds at a time: the best of several medians is stable.
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (OMP_NUM_THREADS)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                    if p]))
    models = ["cnn", "mlp"] if args.model == "both" else [args.model]
    warmup = min(10, args.steps // 4)
    with tempfile.TemporaryDirectory(prefix="dllint-bench-") as workspace:
        script = os.path.join(workspace, "train_bench.py")
        with open(script, "w") as handle:
            handle.write(TRAINING_SCRIPT)
        for model in models:
            plain, instrumented = [], []
            for repeat in range(args.repeats):
                output = os.path.join(workspace, f"{model}-{repeat}.json")
                run_plain(script, model, args.steps, output, env, args.device)
                plain.append(median_step(output, warmup))
                run_instrumented(script, model, args.steps, output, env, workspace, args.device)
                instrumented.append(median_step(output, warmup))
            base, probed = min(plain), min(instrumented)
            print(f"{model}: plain {base * 1e3:.2f} ms/step, instrumented {probed * 1e3:.2f} ms/step, "
                  f"overhead {100 * (probed - base) / base:+.1f}% (best of {args.repeats} medians, "
                  f"{args.steps} steps, {args.threads} thread(s), {args.device})")


if __name__ == "__main__":
    main()
