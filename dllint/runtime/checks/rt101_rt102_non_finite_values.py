"""Non-finite values: the first NaN/Inf loss (RT101) and gradients (RT102), traced to where they appear.

Nothing is checked per module while the script runs; when the loss first turns non-finite, the
training forwards of that step are replayed once, in order, under no_grad with a check on every
module's output (batch-norm statistics restored afterwards) to find the first module whose output is
NaN or Inf while its inputs are finite.
"""

from __future__ import annotations

import math
import sys
import weakref
from typing import Any, List, Optional

from dllint.runtime.observations import Observation, Site

# Training forwards of one step kept for the replay (their inputs stay referenced until the step).
MAX_REMEMBERED_CALLS = 8


class NumericsCheck:
    ATTRIBUTE = "numerics"
    ORDER = 60
    CODES = ()
    RUNTIME_CODES = {
        "RT101": ("nonfinite-loss", "error", "the loss became NaN or infinite"),
        "RT102": ("nonfinite-gradient", "error", "gradients became NaN or infinite while the loss was finite"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self._calls: List[Any] = []  # (weakref to root module, args) of this step's training forwards
        self.loss_report: Optional[Observation] = None
        self.gradient_report: Optional[Observation] = None
        self.finite_steps = 0

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        # Replayed only when a watched step finds a non-finite loss or gradient.
        if grad_enabled and len(self._calls) < MAX_REMEMBERED_CALLS and self.probe.training.watching():
            self._calls.append((weakref.ref(module), args, self.probe.user_site(depth=4)))

    def remembered_calls(self) -> List[Any]:
        """(weakref to the model, args, call site) of this step's training forwards (watched steps only)."""
        return self._calls

    def on_step(self, optimizer, sites: List[Site], loss_value: Optional[float]) -> None:
        try:
            self._judge_step(optimizer, sites, loss_value)
        finally:
            self._calls = []

    def _judge_step(self, optimizer, sites: List[Site], loss_value: Optional[float]) -> None:
        step = self.probe.steps + 1
        if loss_value is not None and not math.isfinite(loss_value):
            if self.loss_report is None:
                self.loss_report = self._explain_loss(loss_value, step)
            return
        record = self.probe.training.optimizers.get(id(optimizer))
        norm = record.last_norm if record is not None else None
        if norm is not None and not math.isfinite(norm):
            if self.gradient_report is None:
                self.gradient_report = self._explain_gradients(optimizer, step, sites)
            return
        if loss_value is not None or norm is not None:
            self.finite_steps += 1

    # -- explanations -------------------------------------------------------------------------------

    def _explain_loss(self, value: float, step: int) -> Observation:
        loss_sites = self.probe.loss.training_sites()[:1] or self.probe.training.last_backward_sites[:1]
        broken = self._nonfinite_parameter()
        if broken is not None:
            return Observation("RT101", f"the loss was {value} at step {step}: parameter {broken} was already "
                               f"non-finite, so an earlier update blew up (learning rate too high, or unclipped "
                               f"gradients)", True, loss_sites, severity="error")
        culprit = self._replay_for_nonfinite()
        if culprit is not None:
            name, kind, site = culprit
            sites = ([site] if site is not None else []) + loss_sites
            shown = kind if name == kind else f"{name} ({kind})"
            return Observation("RT101", f"the loss was {value} at step {step}; the first module whose output "
                               f"was non-finite (with finite inputs) is {shown}", True, sites,
                               severity="error")
        return Observation("RT101", f"the loss was {value} at step {step} while every module output was finite: "
                           f"the loss computation itself produced it (log of 0, division by 0, ...)", True,
                           loss_sites, severity="error")

    def _explain_gradients(self, optimizer, step: int, sites: List[Site]) -> Observation:
        names = self.probe.parameter_names()
        torch = self.torch
        first = None
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None and not bool(torch.isfinite(param.grad).all()):
                    first = names.get(id(param), f"a parameter of shape {tuple(param.shape)}")
                    break
            if first:
                break
        where = f"; the first parameter with one is {first}" if first else ""
        return Observation("RT102", f"at step {step} the loss was finite but the gradients held NaN/Inf{where}",
                           True, sites, severity="error")

    def _nonfinite_parameter(self) -> Optional[str]:
        torch = self.torch
        for record in self.probe.roots.values():
            module = record.module_ref()
            if module is None:
                continue
            for name, param in module.named_parameters():
                if not bool(torch.isfinite(param).all()):
                    return f"{record.name}.{name}"
        return None

    def _replay_for_nonfinite(self):
        for reference, args, call_site in self._calls:
            module = reference()
            if module is not None:
                found = self._replay(module, args, call_site)
                if found is not None:
                    return found
        return None

    def _replay(self, module, args, call_site):
        torch = self.torch
        names = {id(sub): name for name, sub in module.named_modules()}
        found: List[Any] = []
        probe = self.probe

        def check_output(sub, inputs, output):
            if found:
                return
            if _all_finite(output, torch) is False and _all_finite(inputs, torch) is not False:
                site = _site_below(probe, sys._getframe(1), replay_code) or call_site
                found.append((f"{type(module).__name__}.{names.get(id(sub), '?')}".rstrip("."),
                              type(sub).__name__, site))

        replay_code = sys._getframe(0).f_code
        handles = [sub.register_forward_hook(check_output) for sub in module.modules()]
        buffers = [(b, b.detach().clone()) for b in module.buffers()]
        probe.paused = True
        try:
            with torch.no_grad():
                module(*args)
        except Exception:
            return None
        finally:
            probe.paused = False
            for handle in handles:
                handle.remove()
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
        return found[0] if found else None

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        return [report for report in (self.loss_report, self.gradient_report) if report is not None]


def _site_below(probe, frame, stop_code):
    """The innermost user frame between a hook and the replay call (the line inside the model's forward)."""
    while frame is not None and frame.f_code is not stop_code:
        if probe.sources.real_path(frame.f_code.co_filename) is not None:
            return probe.sources.site_of(frame)
        frame = frame.f_back
    return None


def _all_finite(value, torch) -> Optional[bool]:
    """False when some floating tensor in value holds NaN/Inf, True when all are finite, None if no tensor."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() and not value.is_complex():
            return None
        return bool(torch.isfinite(value).all())
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        results = [_all_finite(item, torch) for item in value]
        if any(result is False for result in results):
            return False
        return True if any(result for result in results) else None
    return None
