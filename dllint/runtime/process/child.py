"""The child process (started by session.py, see CHILD_BOOTSTRAP) runs the user's script (or model) under
instrumentation and writes what it saw to the JSON file the parent named.

The script runs as python would run it: `__name__ == "__main__"`, sys.argv set, the working directory
unchanged, the script's folder first on sys.path (`-m` runs the module with run_module, with the
working directory first). Instrumentation is installed before the first line of the script runs.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

from dllint.runtime.observations import Observation, RunOutcome

# The results file is rewritten at most this often while the script runs, so that a child killed
# at the timeout still leaves its observations behind.
SNAPSHOT_SECONDS = 5.0
TRACEBACK_LINES = 25
# Line tracing (before Python 3.12) runs for these first steps, then pauses until the step budget.
TRACED_WARMUP_STEPS = 2


class ResultWriter:
    def __init__(self, path: str):
        self.path = path
        self.last_write = 0.0

    def write(self, outcome: RunOutcome, observations: List[Observation]) -> None:
        data = {"outcome": outcome.to_dict(), "observations": [o.to_dict() for o in observations]}
        temporary = self.path + ".partial"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temporary, self.path)
        self.last_write = time.monotonic()


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    writer = ResultWriter(config["output"])
    started = time.monotonic()
    try:
        import torch  # noqa: F401
    except ImportError as error:
        writer.write(RunOutcome("no-torch", error=str(error)), [])
        _exit(0)
    try:
        if config["mode"] == "model":
            _run_model_checks(config, writer, started)
        else:
            _run_script(config, writer, started)
    except BaseException as error:  # the runner itself failed: say so rather than die silently
        writer.write(RunOutcome("error", error=f"{type(error).__name__}: {error}",
                                traceback="".join(traceback.format_exc()[-4000:])), [])
    _exit(0)


def _exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    # Skip interpreter teardown: lingering DataLoader workers or user threads must not hang the child.
    os._exit(code)


def _run_script(config: Dict[str, Any], writer: ResultWriter, started: float) -> None:
    import torch

    from dllint.runtime.process.coverage import LineCoverage
    from dllint.runtime.process.loop_exit import LoopExit
    from dllint.runtime.hooks import Probe, StopRun
    from dllint.runtime.process.sandbox import Sandbox
    from dllint.runtime.process.stopping import RunControl

    device = config.get("device", "auto")
    if not _device_available(device, torch, writer):
        return
    probe = Probe(config)
    sandbox = Sandbox(probe, device)
    control = RunControl(probe, float(config["timeout"]) - (time.monotonic() - started))
    coverage = LineCoverage(config.get("targets", {}))
    probe.install()
    sandbox.install()
    control.install()
    used_device = "cpu" if device == "cpu" or not torch.cuda.is_available() else "cuda"

    def outcome(status: str, **fields) -> RunOutcome:
        return RunOutcome(status, steps=probe.steps, seconds=round(time.monotonic() - started, 2),
                          device=used_device, reached=coverage.reached_lines(),
                          losses=[round(v, 6) for v in probe.losses[-200:]], **fields)

    def snapshot() -> None:
        if time.monotonic() - writer.last_write >= SNAPSHOT_SECONDS:
            try:
                writer.write(outcome("running", notes=["the child was killed before it finished"]),
                             probe.observations() + sandbox.network_attempts)
            except Exception as error:
                probe.internal_error("snapshot", error)

    def after_step() -> None:
        snapshot()
        if probe.steps == TRACED_WARMUP_STEPS:
            coverage.pause()

    budget_reached = probe.on_budget_reached
    loop_exit = LoopExit(probe.sources, coverage.tracer)

    def on_budget_reached() -> None:
        budget_reached()
        frame = sys._getframe(1)
        coverage.resume(frame)
        loop_exit.arm(frame)  # after coverage: its line tracer keeps running under the loop exit's

    probe.on_step_done = after_step
    probe.on_budget_reached = on_budget_reached
    probe.sources.on_site = coverage.mark
    script = config.get("script")
    if script:
        sys.argv = [script, *config.get("args", [])]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
    else:
        sys.argv = [config["module"], *config.get("args", [])]
        sys.path[0] = os.getcwd()
    status, exit_code, trace, notes = "finished", None, "", []
    coverage.start()
    try:
        if script:
            runpy.run_path(script, run_name="__main__")
        else:
            runpy.run_module(config["module"], run_name="__main__", alter_sys=True)
    except StopRun as stop:
        reason = control.stop_reason or stop.reason
        status = "timeout" if reason == "timeout" else "stopped"
    except SystemExit as exit_request:
        code = exit_request.code
        if code is None or code == 0:
            status = "finished"
        elif probe.budget_reached:
            status = "stopped"
        else:
            status, exit_code = "exited", code if isinstance(code, int) else 1
            if not isinstance(code, int):
                notes.append(f"sys.exit({code!r})")
    except BaseException as error:
        if probe.budget_reached:
            status = "stopped"
            notes.append(f"after the step budget the script raised {type(error).__name__}: {error} (ignored: "
                         f"the run was being wound down)")
        else:
            status = "crashed"
            trace = _user_traceback(error, probe.sources)
    finally:
        control.disarm()
        coverage.stop()
        probe.paused = True
    probe.progress.done()
    if status == "stopped" and control.stop_reason == "grace":
        notes.append("the script kept running after the step budget; it was stopped after the grace period")
    observations = probe.observations() + sandbox.network_attempts
    notes.extend(sandbox.notes())
    notes.extend(f"internal error in the instrumentation (please report): {e}" for e in probe.internal_errors)
    loaded = _loaded_user_files(probe, script)
    writer.write(outcome(status, exit_code=exit_code, traceback=trace, notes=notes, loaded_files=loaded),
                 observations)


def _user_traceback(error: BaseException, sources) -> str:
    """The traceback's user frames and the frame that raised; library frames in between are folded."""
    runtime_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith(runtime_dir) and "runpy" not in os.path.basename(frame.filename)]
    lines = ["Traceback (most recent call last):\n"]
    folded = 0
    for position, frame in enumerate(frames):
        if sources.real_path(frame.filename) is None and position != len(frames) - 1:
            folded += 1
            continue
        if folded:
            lines.append(f"  ... {folded} library frame{'s' if folded > 1 else ''}\n")
            folded = 0
        lines.extend(traceback.format_list([frame]))
    lines += traceback.format_exception_only(type(error), error)
    text = "".join(lines)
    return "\n".join(text.splitlines()[-TRACEBACK_LINES * 2:])


def _loaded_user_files(probe, script: Optional[str]) -> List[str]:
    files = set()
    if script:
        real = probe.sources.real_path(os.path.abspath(script))
        if real:
            files.add(real)
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if filename:
            real = probe.sources.real_path(filename)
            if real:
                files.add(real)
    return sorted(files)


def _device_available(device: str, torch, writer: ResultWriter) -> bool:
    if device == "cuda" and not torch.cuda.is_available():
        writer.write(RunOutcome("error", error="--device cuda was asked for, but torch.cuda.is_available() is "
                                               "false on this machine"), [])
        return False
    return True


def _run_model_checks(config: Dict[str, Any], writer: ResultWriter, started: float) -> None:
    import importlib

    import torch

    from dllint.runtime.model_check import check_model, observations_from_report

    sys.path.insert(0, os.getcwd())
    module_name, _, attribute = config["model"].partition(":")
    module = importlib.import_module(module_name)
    factory = module
    for part in (attribute or "").split("."):
        if part:
            factory = getattr(factory, part)
    model = factory() if callable(factory) and not isinstance(factory, torch.nn.Module) else factory
    device = config.get("device", "auto")
    if not _device_available(device, torch, writer):
        return
    # `auto` means CUDA when there is one, as for scripts; the batch is drawn on the CPU so that both
    # devices check the same numbers.
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if on_cuda:
        model = model.cuda()
    shape = [int(n) for n in config["input_shape"]]
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(*shape, generator=generator)
    if on_cuda:
        batch = batch.cuda()
    report = check_model(model, batch, classes=config.get("classes"), steps=config.get("steps") or None,
                         plot=config.get("plot"))
    observations = observations_from_report(report, model)
    outcome = RunOutcome("finished", steps=report.steps, seconds=round(time.monotonic() - started, 2),
                         device="cuda" if batch.is_cuda else "cpu", losses=[round(v, 6) for v in report.curve],
                         notes=report.notes)
    writer.write(outcome, observations)


if __name__ == "__main__":
    main()
