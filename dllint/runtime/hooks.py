"""The child side's shared state and the global torch hooks that feed every runtime check.

One forward pre-hook, one forward hook and one pair of optimizer step hooks are installed for the whole
process; they keep the module call stack and the step count and hand each event to the checks of
dllint.runtime.checks (found there, one module per check). The user's files are never modified.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple

from dllint.runtime.observations import Observation, Site

# How many root forwards of each model the module check records in detail (call sites of every
# submodule): enough to see reuse and unregistered layers, cheap for the remaining steps.
SAMPLED_FORWARDS_PER_ROOT = 2
# User frames an observation keeps at most (a recursion deeper than this keeps both of its ends).
KEPT_FRAMES = 200
# Distinct call chains whose sites are cached.
MAX_CACHED_CHAINS = 4096
PROGRESS_SECONDS = 0.2
# Optimizers that may step in the iteration that reaches the step budget (GANs and the like).
MAX_OPTIMIZERS_AFTER_BUDGET = 8


@dataclass(eq=False)
class LineRecord:
    """What a check saw at one line of the user's code: the function called there and the user frames of
    its first call (the line first). Checks subclass it with their counters."""

    function: str
    sites: List[Site]


class LineCheck:
    """A runtime check that keeps one RECORD (a LineRecord class) per line of the user's code it observes."""

    RECORD = LineRecord

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.lines: Dict[Site, LineRecord] = {}

    def record_at(self, function: str, sites: List[Site]):
        """The record of the line sites[0], made on the first call there."""
        record = self.lines.get(sites[0])
        if record is None:
            record = self.lines[sites[0]] = self.RECORD(function, sites)
        return record

    def record_of_frame(self, function: str, frame, limit: Optional[int] = None):
        """The record of the line `frame` runs; the user frames that led there are read on its first call."""
        site = self.probe.sources.site_of(frame)
        if site in self.lines:
            return self.lines[site]
        return self.record_at(function, [site] + self.probe.sources.user_sites(frame.f_back, limit))


def wrap_calls(probe, owner, names, observe) -> None:
    """Replace `owner.<name>` for each name by a wrapper that calls `observe(name, original, args, kwargs)`
    before the original. An error in `observe` is noted as an internal error, never raised into the
    user's script; `__wrapped__` leads to the original, so wrappers of several checks stack."""
    for name in names:
        original = getattr(owner, name, None)
        if original is not None:
            setattr(owner, name, _observing(probe, name, original, observe))


def _observing(probe, name: str, original, observe):
    def observed(*args, **kwargs):
        try:
            observe(name, original, args, kwargs)
        except StopRun:
            raise
        except Exception as error:
            probe.internal_error(f"{name} wrapper", error)
        return original(*args, **kwargs)

    observed.__wrapped__ = original
    observed.__name__ = name
    return observed


def let_torchscript_see_through(torch) -> None:
    """TorchScript must compile the user's scripted functions as without dllint: each wrapper the checks put
    on a torch or torch.nn.functional function is registered as the builtin operator of the function it
    wraps, or, for a Python function, marked so that torch.jit.script compiles the original instead."""
    try:
        from torch.jit import _builtins
    except ImportError:
        return
    for module in (torch, torch.nn.functional):
        for name, value in list(vars(module).items()):
            original = _our_wrapped(value)
            if original is None:
                continue
            try:
                operator = _builtins._find_builtin(original)
                if operator is not None:
                    _builtins._register_builtin(value, operator)
                else:
                    setattr(value, "__script_if_tracing_wrapper", True)
                    setattr(value, "__original_fn", original)
            except Exception:
                continue


def _our_wrapped(value):
    """The function under dllint's own wrappers (several checks may stack theirs), None for anything else."""
    original = None
    while callable(value) and getattr(value, "__module__", "").startswith("dllint.") and hasattr(value, "__wrapped__"):
        original = value = value.__wrapped__
    return original


class StopRun(BaseException):
    """Ends the user's script. A BaseException, so that `except Exception:` in user code lets it pass."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SourceFilter:
    """Decides which files are the user's: under the script's folder, outside environments and dllint."""

    def __init__(self, user_root: str, excluded: List[str]):
        self.root = os.path.realpath(user_root).rstrip(os.sep) + os.sep
        self.excluded = [os.path.realpath(path).rstrip(os.sep) + os.sep for path in excluded]
        self._cache: Dict[str, Optional[str]] = {}
        self._positions: Dict[Any, list] = {}
        self.on_site = None  # told of every user line a hook saw running (line coverage)
        self._sites: Dict[Any, tuple] = {}

    def real_path(self, filename: str) -> Optional[str]:
        """The real path of a user file, None for anything else (cached per code filename)."""
        try:
            return self._cache[filename]
        except KeyError:
            pass
        resolved = None
        if filename and not filename.startswith("<"):
            real = os.path.realpath(filename)
            parts = real.split(os.sep)
            if (real.startswith(self.root) and "site-packages" not in parts and "dist-packages" not in parts
                    and not any(real.startswith(prefix) for prefix in self.excluded) and os.path.isfile(real)):
                resolved = real
        self._cache[filename] = resolved
        return resolved

    def site_of(self, frame) -> Site:
        path = self.real_path(frame.f_code.co_filename) or frame.f_code.co_filename
        if self.on_site is not None:
            self.on_site(path, frame.f_lineno)
        return (path, frame.f_lineno, self._column(frame))

    def _column(self, frame) -> int:
        code = frame.f_code
        if not hasattr(code, "co_positions"):
            return 1
        positions = self._positions.get(code)
        if positions is None:
            positions = self._positions[code] = list(code.co_positions())
        index = frame.f_lasti // 2
        if 0 <= index < len(positions) and positions[index][2] is not None:
            return positions[index][2] + 1
        return 1

    def innermost_user_frame(self, frame):
        while frame is not None:
            if self.real_path(frame.f_code.co_filename) is not None:
                return frame
            frame = frame.f_back
        return None

    def user_sites(self, frame, limit: Optional[int] = None) -> List[Site]:
        """Sites of the user frames on the stack, innermost first: all of them unless `limit` is given, so
        that a finding on any caller (the validate() call in the batch loop, the train_epoch() call, the
        helper that switched the mode) is matched by the observation. Deep recursion keeps its innermost and
        outermost KEPT_FRAMES // 2 frames.

        Hooks ask for this on every watched step: the sites are cached by the user frames' code objects
        and instructions, so a repeated call chain costs one walk of the stack and no new site."""
        frames = []
        while frame is not None:
            if self.real_path(frame.f_code.co_filename) is not None:
                frames.append(frame)
                if limit is not None and len(frames) >= limit:
                    break
            frame = frame.f_back
        if not frames:
            return []
        if len(frames) > KEPT_FRAMES:
            frames = frames[:KEPT_FRAMES // 2] + frames[-(KEPT_FRAMES // 2):]
        key = tuple((f.f_code, f.f_lasti) for f in frames)
        cached = self._sites.get(key)
        if cached is not None:
            if self.on_site is not None:
                self.on_site(cached[0][0], cached[0][1])
            return list(cached)
        sites = [self.site_of(f) for f in frames]
        if len(self._sites) >= MAX_CACHED_CHAINS:
            self._sites.clear()
        self._sites[key] = tuple(sites)
        return sites

    def caller_is_user(self, frame) -> bool:
        return frame is not None and self.real_path(frame.f_code.co_filename) is not None


class RootRecord:
    """A module called from outside any other module's forward: a model as the script uses it."""

    __slots__ = ("module_ref", "name", "grad_forwards", "nograd_forwards", "sampled", "_param_ids",
                 "_param_count", "__weakref__")

    def __init__(self, module):
        self.module_ref = weakref.ref(module)
        self.name = type(module).__name__
        self.grad_forwards = 0
        self.nograd_forwards = 0
        self.sampled = 0
        self._param_ids: Optional[Set[int]] = None
        self._param_count = -1

    def param_ids(self) -> Set[int]:
        module = self.module_ref()
        if module is None:
            return self._param_ids or set()
        params = list(module.parameters())
        if self._param_ids is None or len(params) != self._param_count:
            self._param_ids = {id(p) for p in params}
            self._param_count = len(params)
        return self._param_ids


class Progress:
    """The progress line on the parent's stderr: step i/N and the current loss (at most every
    PROGRESS_SECONDS, and at the last step)."""

    def __init__(self, fd: Optional[int], budget: int):
        self.fd = fd
        self.budget = budget
        self.tty = fd is not None and os.isatty(fd)
        self.last_write = 0.0

    def step(self, step: int, loss: Optional[float]) -> None:
        if self.fd is None:
            return
        now = time.monotonic()
        if now - self.last_write < PROGRESS_SECONDS and step < self.budget:
            return
        self.last_write = now
        loss_text = "" if loss is None else f"  loss {loss:.4g}"
        line = f"dllint: step {step}/{self.budget}{loss_text}"
        try:
            os.write(self.fd, (f"\r{line}\x1b[K" if self.tty else line + "\n").encode())
        except OSError:
            self.fd = None

    def done(self) -> None:
        if self.fd is not None and self.tty:
            try:
                os.write(self.fd, b"\r\x1b[K")
            except OSError:
                pass


class Probe:
    """Owns the global hooks and dispatches their events to the checks."""

    def __init__(self, config: Dict[str, Any]):
        import torch

        from dllint.runtime.checks import check_classes

        self.torch = torch
        self.config = config
        self.sources = SourceFilter(config["user_root"], config.get("excluded_dirs", []))
        self.step_budget = int(config["steps"])
        self.started = time.monotonic()
        self.steps = 0
        self.budget_reached = False
        self.stepped_after_budget: Set[int] = set()  # optimizer records that stepped since the budget
        self.module_stack: List[Any] = []
        self.called_module_ids: Set[int] = set()
        self.grad_called_module_ids: Set[int] = set()  # modules that ran with gradients enabled
        self.roots: Dict[int, RootRecord] = {}
        self.sampling_root: Optional[RootRecord] = None
        self.backward_count = 0
        self.paused = False  # set while the runtime itself runs a model (the non-finite replay)
        self.notes: List[str] = []
        self.internal_errors: List[str] = []
        self.losses: List[float] = []
        self.progress = Progress(config.get("progress_fd"), self.step_budget)
        self.on_budget_reached = None  # set by the stopping machinery
        self.on_step_done = None
        # Every check, by its ATTRIBUTE (probe.training, probe.loss...: checks use each other's facts).
        self.checks = [check_class(self) for check_class in check_classes()]
        for check in self.checks:
            setattr(self, check.ATTRIBUTE, check)
        self._root_forward_checks = [c for c in self.checks if hasattr(c, "on_root_forward")]
        self._step_checks = [c for c in self.checks if hasattr(c, "on_step")]
        self._handles: List[Any] = []

    # -- installation -------------------------------------------------------------------------------

    def install(self) -> None:
        from torch.nn.modules import module as module_module
        from torch.optim import optimizer as optimizer_module

        self._handles.append(module_module.register_module_forward_pre_hook(self._before_forward))
        self._handles.append(module_module.register_module_forward_hook(self._after_forward, always_call=True))
        self._handles.append(optimizer_module.register_optimizer_step_pre_hook(self._before_step))
        self._handles.append(optimizer_module.register_optimizer_step_post_hook(self._after_step))
        for check in self.checks:
            if hasattr(check, "install"):
                check.install()
        let_torchscript_see_through(self.torch)

    # -- helpers for the checks ---------------------------------------------------------------------

    def user_sites(self, depth: int = 2) -> List[Site]:
        return self.sources.user_sites(sys._getframe(depth))

    def user_site(self, depth: int = 2) -> Optional[Site]:
        sites = self.sources.user_sites(sys._getframe(depth), limit=1)
        return sites[0] if sites else None

    def finding_lines(self, code: str) -> Set[Tuple[str, int]]:
        """(real path, line) of every line of the statements that hold a static finding of this code."""
        return {(path, line) for path, lines in self.config.get("finding_lines", {}).get(code, {}).items()
                for line in lines}

    def internal_error(self, where: str, error: BaseException) -> None:
        """A bug in the instrumentation must never break the user's script: note it and carry on."""
        if len(self.internal_errors) < 5:
            self.internal_errors.append(f"{where}: {type(error).__name__}: {error}")

    def optimizer_param_ids(self) -> Set[int]:
        return self.training.all_optimized_ids()

    def trained_roots(self) -> List[Tuple[RootRecord, Any]]:
        """Roots (still alive) with at least one parameter in an optimizer."""
        optimized = self.optimizer_param_ids()
        found = []
        for record in self.roots.values():
            module = record.module_ref()
            if module is not None and record.param_ids() & optimized:
                found.append((record, module))
        return found

    def parameter_names(self) -> Dict[int, str]:
        """Qualified names of the parameters of every root, for messages."""
        names: Dict[int, str] = {}
        for record in self.roots.values():
            module = record.module_ref()
            if module is None:
                continue
            for name, param in module.named_parameters():
                names.setdefault(id(param), f"{record.name}.{name}")
        return names

    # -- module hooks -------------------------------------------------------------------------------

    def _before_forward(self, module, args):
        if self.paused:
            return
        stack = self.module_stack
        self.called_module_ids.add(id(module))
        if self.torch.is_grad_enabled():
            self.grad_called_module_ids.add(id(module))
        if not stack:
            try:
                self._root_called(module, args)
            except StopRun:
                raise
            except Exception as error:
                self.internal_error("forward pre-hook", error)
        elif self.sampling_root is not None:
            try:
                self.modules.nested_call(module, stack[-1], args)
            except Exception as error:
                self.internal_error("forward pre-hook", error)
        stack.append(module)

    def _after_forward(self, module, args, output):
        if self.paused:
            return
        stack = self.module_stack
        # Pop down to this module: a forward that raised inside a nested module still unwinds cleanly.
        while stack:
            if stack.pop() is module:
                break
        if stack and self.sampling_root is not None:
            try:
                self.modules.nested_return(module, output)
            except Exception as error:
                self.internal_error("forward hook", error)
        if not stack:
            try:
                self._root_returned(module, args, output)
            except Exception as error:
                self.internal_error("forward hook", error)

    def _root_called(self, module, args) -> None:
        record = self.roots.get(id(module))
        if record is None or record.module_ref() is not module:
            record = self.roots[id(module)] = RootRecord(module)
        grad_enabled = self.torch.is_grad_enabled()
        if grad_enabled:
            record.grad_forwards += 1
        else:
            record.nograd_forwards += 1
        for check in self._root_forward_checks:
            check.on_root_forward(record, module, args, grad_enabled)
        if record.sampled < SAMPLED_FORWARDS_PER_ROOT:
            record.sampled += 1
            self.sampling_root = record
            self.modules.begin_sample(record, module)

    def _root_returned(self, module, args, output) -> None:
        if self.sampling_root is not None and self.sampling_root.module_ref() is module:
            self.sampling_root = None
            self.modules.end_sample(module)

    # -- optimizer hooks ----------------------------------------------------------------------------

    def _before_step(self, optimizer, args, kwargs):
        if self.budget_reached:
            self._step_after_budget(optimizer)
        try:
            # Where the step runs is read on watched steps, and whenever a mode check needs it.
            sites = self.user_sites(depth=2) if self.training.watching() or self.mode.wants_step_sites() else []
            loss_value = self.training.before_step(optimizer, sites)
            for check in self._step_checks:
                check.on_step(optimizer, sites, loss_value)
            if self.on_step_started is not None:
                self.on_step_started()
        except StopRun:
            raise
        except Exception as error:
            self.internal_error("optimizer pre-hook", error)

    on_step_started = None

    def _step_after_budget(self, optimizer) -> None:
        """The iteration that reached the budget may still step its other optimizers (a GAN's generator);
        an optimizer stepping again means the training loop was not left: stop the script."""
        index = self.training.record_index(optimizer)
        if index in self.stepped_after_budget or len(self.stepped_after_budget) >= MAX_OPTIMIZERS_AFTER_BUDGET:
            raise StopRun("steps")
        self.stepped_after_budget.add(index)

    def _after_step(self, optimizer, args, kwargs):
        try:
            steps = self.training.after_step(optimizer)
        except Exception as error:
            self.internal_error("optimizer post-hook", error)
            return
        if steps > self.steps:
            self.steps = steps
            self.progress.step(steps, self.training.last_loss_value)
            if self.on_step_done is not None:
                self.on_step_done()
            if steps >= self.step_budget and not self.budget_reached:
                self.budget_reached = True
                self.stepped_after_budget.add(self.training.record_index(optimizer))
                if self.on_budget_reached is not None:
                    self.on_budget_reached()

    # -- results ------------------------------------------------------------------------------------

    def observations(self) -> List[Observation]:
        found: List[Observation] = []
        for check in self.checks:
            try:
                found.extend(check.finish())
            except Exception as error:
                self.internal_error(f"{type(check).__name__}.finish", error)
        return found
