"""The parent side of `dllint confirm`: lint, run the child, wait (killing it at the timeout), judge.

Never imports torch: the child does. The child runs in its own session (process group) so that the
timeout kills it together with its DataLoader workers; on Linux this process is also the child's
subreaper, and every process left below it at the end (a server started in a new session, a daemon
double-forked with setsid) is killed too: nothing the script started outlives the run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set

from dllint.findings import Finding
from dllint.runtime.observations import Observation, RunOutcome
from dllint.runtime.verdicts import Judge, Judged, SourceIndex, coverage_targets, exit_status, finding_lines

# The parent kills the process group this long after the child's own timeout should have fired.
KILL_MARGIN_SECONDS = 10.0
# The static analysis before the run may take this share of --timeout; the run has the rest, at least
# MIN_RUN_SECONDS.
LINT_SHARE = 0.5
MIN_RUN_SECONDS = 1.0
OUTPUT_TAIL_LINES = 30
INSTALL_HINT = "pip install 'dllint[runtime]'"
# A script that mentions these gets the torchrun environment of a one-process world.
DISTRIBUTED_MARKERS = ("init_process_group", "torch.distributed", "LOCAL_RANK")


# The folder that holds this dllint package (a checkout, or site-packages for an installed wheel).
DLLINT_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE_PARENT = os.path.dirname(DLLINT_PACKAGE)
# The child imports this very dllint, then leaves sys.path as python's own would be for the script. The
# folder is added (and removed) only when it is not already there: for an installed dllint it is
# site-packages itself, which must stay for torch.
CHILD_BOOTSTRAP = """import sys
package_parent, config_path = sys.argv[1:3]
added = package_parent not in sys.path
if added:
    sys.path.insert(0, package_parent)
from dllint.runtime.process.child import main
if added:
    sys.path.remove(package_parent)
main([config_path])
"""


class ConfirmError(Exception):
    """The run cannot start (no torch, no such script or module): a one-line message, exit status 2."""


@dataclass
class ConfirmRequest:
    script: Optional[str] = None
    module: Optional[str] = None
    model: Optional[str] = None
    args: Sequence[str] = ()
    steps: int = 20
    device: str = "auto"
    timeout: float = 120.0
    input_shape: Optional[List[int]] = None
    classes: Optional[int] = None
    plot: Optional[str] = None


@dataclass
class ConfirmResult:
    target: str
    outcome: RunOutcome
    findings: List[Judged] = field(default_factory=list)
    runtime_findings: List[Judged] = field(default_factory=list)
    lint_notices: List[str] = field(default_factory=list)
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def exit_status(self) -> int:
        return exit_status(self.outcome, self.findings, self.runtime_findings)


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def confirm(request: ConfirmRequest, progress_fd: Optional[int] = None) -> ConfirmResult:
    """Run the whole confirm pipeline and return the judged result."""
    if not torch_available():
        raise ConfirmError(f"dllint confirm needs torch, which is not installed: {INSTALL_HINT}")
    deadline = time.monotonic() + float(request.timeout)
    if request.model:
        _announce(progress_fd, f"importing {request.model} and training the model it builds")
        return _confirm_model(request, progress_fd)
    if request.script:
        script = os.path.abspath(request.script)
        if not os.path.isfile(script):
            raise ConfirmError(f"{request.script}: no such file")
        user_root = os.path.dirname(os.path.realpath(script))
        lint_target, target = user_root, request.script
    else:
        found = _find_module(request.module or "")
        if found is None:
            raise ConfirmError(f"no module named {request.module} (looked in the working directory and sys.path)")
        module_file, lint_target = found
        user_root = os.path.dirname(os.path.realpath(lint_target)) if os.path.isfile(lint_target) else \
            os.path.dirname(os.path.realpath(lint_target))
        script, target = None, f"-m {request.module}"
    findings, notices, lint_note = _lint_within(lint_target, script or module_file, deadline)
    index = SourceIndex()
    config = {
        "mode": "script" if script else "module",
        "script": script,
        "module": request.module,
        "args": list(request.args),
        "steps": request.steps,
        "device": request.device,
        "timeout": max(MIN_RUN_SECONDS, deadline - time.monotonic()),
        "user_root": user_root,
        "excluded_dirs": [DLLINT_PACKAGE, sys.prefix,
                          sys.base_prefix],
        "targets": coverage_targets(findings, index),
        "finding_lines": finding_lines(findings, index),
    }
    distributed = _mentions_distributed(lint_target)
    _announce(progress_fd, f"running {target} (your code is executed) for up to {request.steps} optimizer steps "
                           f"or {config['timeout']:.0f} s, offline")
    outcome, observations, stdout_tail, stderr_tail = _run_child(config, request, progress_fd, distributed)
    judge = Judge(findings, observations, outcome, index, script or (module_file if request.module else None))
    judged, runtime = judge.run()
    if lint_note:
        outcome.notes.insert(0, lint_note)
    return ConfirmResult(target, outcome, judged, runtime, notices, stdout_tail, stderr_tail)


def _confirm_model(request: ConfirmRequest, progress_fd: Optional[int]) -> ConfirmResult:
    if not request.input_shape:
        raise ConfirmError("--model needs --input-shape, e.g. --input-shape 8,3,32,32")
    config = {"mode": "model", "model": request.model, "input_shape": request.input_shape,
              "classes": request.classes, "steps": request.steps, "plot": request.plot,
              "device": request.device, "timeout": request.timeout, "user_root": os.getcwd()}
    outcome, observations, stdout_tail, stderr_tail = _run_child(config, request, progress_fd, False)
    judge = Judge([], observations, outcome, SourceIndex(), None)
    judged, runtime = judge.run()
    return ConfirmResult(request.model or "", outcome, judged, runtime, [], stdout_tail, stderr_tail)


# -- static analysis --------------------------------------------------------------------------------

def _lint(path: str):
    from dllint import registry
    from dllint.runner import lint_paths

    codes = [rule.code for rule in registry.all_rules()]
    result = lint_paths([path], codes)
    return list(result.findings), list(result.notices)


def _lint_within(folder: str, entry: Optional[str], deadline: float):
    """(findings, notices, note) for the script's folder, within LINT_SHARE of the time left; when that is
    not enough, for the script alone (the rest of the time is the run's), with a note saying so."""
    limit = LINT_SHARE * max(0.0, deadline - time.monotonic())
    done = _run_with_limit(_lint, folder, limit)
    if done is not None:
        return done[0], done[1], ""
    note = f"the static analysis of {folder} took more than {limit:.1f} s (half the time left of --timeout): "
    if entry and entry != folder:
        done = _run_with_limit(_lint, entry, LINT_SHARE * max(0.0, deadline - time.monotonic()))
        if done is not None:
            return done[0], done[1], note + "only the script itself was analysed"
    return [], [], note + "the run is judged without static findings"


def _run_with_limit(function, argument, seconds: float):
    """function(argument), or None when it has not returned within `seconds`. It runs in a forked process
    (killed, with any pool it started, when the time is up); where there is no fork, in a daemon thread
    that is left to finish."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        outcome: List = []
        worker = threading.Thread(target=lambda: outcome.append(function(argument)), daemon=True)
        worker.start()
        worker.join(seconds)
        return outcome[0] if outcome else None
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the forked analysis: send the result, leave without running the parent's exit code
        status = 0
        try:
            receiver.close()
            sender.send(function(argument))
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    sender.close()
    try:
        if receiver.poll(seconds):
            try:
                return receiver.recv()
            except (EOFError, OSError):
                return None
        return None
    finally:
        receiver.close()
        for process in [pid] + _descendants(pid):
            try:
                os.kill(process, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _announce(progress_fd: Optional[int], text: str) -> None:
    if progress_fd is None:
        return
    try:
        os.write(progress_fd, f"dllint: {text}\n".encode())
    except OSError:
        pass


def _mentions_distributed(path: str) -> bool:
    files = [path] if os.path.isfile(path) else [
        os.path.join(directory, name) for directory, _, names in os.walk(path) for name in names
        if name.endswith(".py")][:500]
    for name in files:
        try:
            with open(name, encoding="utf-8", errors="replace") as handle:
                text = handle.read(500_000)
        except OSError:
            continue
        if any(marker in text for marker in DISTRIBUTED_MARKERS):
            return True
    return False


def _find_module(name: str):
    """(module file, path to lint) for `-m name`, found without importing anything."""
    parts = [part for part in name.split(".") if part]
    if not parts:
        return None
    for base in [os.getcwd()] + [p for p in sys.path if p and os.path.isdir(p)]:
        top = os.path.join(base, parts[0])
        candidates = [os.path.join(base, *parts) + ".py", os.path.join(base, *parts, "__main__.py")]
        for candidate in candidates:
            if os.path.isfile(candidate):
                lint_target = top if os.path.isdir(top) else candidate
                return candidate, lint_target
    return None


# -- the child process ------------------------------------------------------------------------------

def _run_child(config: Dict, request: ConfirmRequest, progress_fd: Optional[int], distributed: bool):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if request.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    if distributed:
        env.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                    "GROUP_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    with tempfile.TemporaryDirectory(prefix="dllint-confirm-") as workspace:
        config["output"] = os.path.join(workspace, "observations.json")
        pass_fds = ()
        if progress_fd is not None:
            # A duplicate: the child's own descriptor 2 is the captured stderr file.
            progress_fd = os.dup(progress_fd)
            config["progress_fd"] = progress_fd
            pass_fds = (progress_fd,)
        config_path = os.path.join(workspace, "config.json")
        with open(config_path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        stdout_path = os.path.join(workspace, "stdout.txt")
        stderr_path = os.path.join(workspace, "stderr.txt")
        killed = False
        reaping = _become_subreaper()
        already_running = set(_descendants(os.getpid()))
        with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
            process = subprocess.Popen([sys.executable, "-c", CHILD_BOOTSTRAP, PACKAGE_PARENT, config_path],
                                       stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                                       start_new_session=os.name == "posix", pass_fds=pass_fds)
            try:
                process.wait(timeout=float(config["timeout"]) + KILL_MARGIN_SECONDS)
            except subprocess.TimeoutExpired:
                killed = True
            except KeyboardInterrupt:
                _kill_group(process)
                raise
            finally:
                _kill_group(process)
                _kill_descendants(already_running)
                if reaping:
                    _set_subreaper(False)
                if progress_fd is not None:
                    os.close(progress_fd)
        outcome, observations = _read_results(config["output"])
        if outcome is None:
            outcome = RunOutcome("error", exit_code=process.returncode,
                                 error=f"the child process ended without a result (exit status {process.returncode})")
        if killed:
            outcome.status = "timeout"
            outcome.notes.append(f"the script did not stop at the timeout; its process group was killed "
                                 f"{KILL_MARGIN_SECONDS:.0f} s later")
        return outcome, observations, _tail(stdout_path), _tail(stderr_path)


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the child and everything it started (DataLoader workers), whether it ended or not."""
    if os.name == "posix":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if process.poll() is None:
        process.kill()
    process.wait()


# Linux prctl options: orphaned descendants are re-parented to this process instead of init, so that a
# grandchild started in a new session, or double-forked with setsid, is still found and killed.
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37


def _set_subreaper(on: bool) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _become_subreaper() -> bool:
    """Become the subreaper for the run (Linux); False where that is not possible or already so."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        current = ctypes.c_int(0)
        if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(current), 0, 0, 0) != 0 or current.value:
            return False
    except (OSError, AttributeError):
        return False
    return _set_subreaper(True)


def _descendants(root: int) -> List[int]:
    """Every process below `root`, from /proc (empty where there is no /proc)."""
    children: Dict[int, List[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, pending = [], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _kill_descendants(spared: Set[int]) -> None:
    """Kill whatever the script left running outside its process group (new sessions, daemons), and reap
    those re-parented to this process. `spared`: this process's own children from before the run."""
    for _ in range(3):  # a process may fork while its siblings are being killed
        remaining = [pid for pid in _descendants(os.getpid()) if pid not in spared]
        if not remaining:
            return
        for pid in remaining:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in remaining:
            try:
                os.waitpid(pid, 0)
            except (ChildProcessError, OSError):
                pass  # not our child: its own parent (also killed) or init reaps it


def _read_results(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None, []
    outcome = RunOutcome.from_dict(data.get("outcome", {}))
    observations = [Observation.from_dict(item) for item in data.get("observations", [])]
    return outcome, observations


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 20_000))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-OUTPUT_TAIL_LINES:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Errors whose cause is usually far from the traceback's lines, and the rule that finds that cause.
CAUSES_BY_ERROR = {
    # Submodules in a plain list or dict are not moved by model.to("cuda"): their weights stay on the CPU.
    "DL501": ("Expected all tensors to be on the same device", "is not on the expected device"),
}


def findings_in_traceback(result: ConfirmResult) -> List[Finding]:
    """Static findings on lines of the crash's traceback, or known to cause its error: the likely explanations."""
    text = result.outcome.traceback
    found = []
    for judged in result.findings:
        finding = judged.finding
        marker = f'"{os.path.realpath(finding.path)}", line {finding.line}'
        marker_relative = f'{os.path.basename(finding.path)}", line {finding.line}'
        if marker in text or marker_relative in text:
            found.append(finding)
        elif any(error in text for error in CAUSES_BY_ERROR.get(finding.code, ())):
            found.append(finding)
    return found
