"""Gradient observations: DL401, min/max/clamp with a constant bound zeroing the gradient where it clips.

The wrappers count, on tensors that carry gradient and only for calls written in the user's files, the
share of elements beyond the bound: those get exactly zero gradient. The counts stay on the device until
the end of the run, so the training loop is never synchronised.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, List

from dllint.runtime.hooks import LineCheck, LineRecord
from dllint.runtime.observations import Observation

# DL401 is confirmed when at least this share of the elements that passed through the call was clipped.
CLIPPED_SHARE = 0.2
# Counts kept per line (the first calls, then a sample).
KEPT_COUNTS = 64

CLAMP_FUNCTIONS = ("clamp", "clip", "clamp_min", "clamp_max")
BINARY_FUNCTIONS = ("max", "min", "maximum", "minimum", "fmax", "fmin")


@dataclass(eq=False)
class ClampSite(LineRecord):
    calls: int = 0
    counts: List[Any] = field(default_factory=list)  # (clipped count tensor, elements)


class GradientCheck(LineCheck):
    ATTRIBUTE = "gradient"
    ORDER = 40
    CODES = ("DL401",)
    UNOBSERVABLE = {"DL401": "no torch clamp/min/max call carrying gradient was seen on this line "
                             "(Python's built-in min()/max() cannot be observed)"}
    RECORD = ClampSite

    def install(self) -> None:
        torch = self.torch
        for name in CLAMP_FUNCTIONS:
            for owner in (torch, torch.Tensor):
                original = getattr(owner, name, None)
                if original is not None:
                    setattr(owner, name, self._wrap(name, original, self._clamp_clipped))
            in_place = getattr(torch.Tensor, name + "_", None)
            if in_place is not None:
                setattr(torch.Tensor, name + "_", self._wrap(name + "_", in_place, self._clamp_clipped))
        for name in BINARY_FUNCTIONS:
            for owner in (torch, torch.Tensor):
                original = getattr(owner, name, None)
                if original is not None:
                    setattr(owner, name, self._wrap(name, original, self._binary_clipped))

    def _wrap(self, name: str, original, count):
        check = self
        sources = self.probe.sources
        torch = self.torch

        def clipping_function(*args, **kwargs):
            caller = sys._getframe(1)
            if (sources.real_path(caller.f_code.co_filename) is not None and torch.is_grad_enabled()):
                try:
                    clipped = count(name, args, kwargs)
                    if clipped is not None:
                        check.record(name, caller, *clipped)
                except Exception as error:
                    check.probe.internal_error(f"{name} wrapper", error)
            return original(*args, **kwargs)

        clipping_function.__wrapped__ = original
        clipping_function.__name__ = name
        return clipping_function

    # -- counting -----------------------------------------------------------------------------------

    def _clamp_clipped(self, name: str, args, kwargs):
        torch = self.torch
        tensor = args[0] if args else kwargs.get("input")
        if not isinstance(tensor, torch.Tensor) or not tensor.requires_grad or not tensor.is_floating_point():
            return None
        rest = list(args[1:])
        if name.startswith("clamp_min"):
            low, high = (rest[0] if rest else kwargs.get("min")), None
        elif name.startswith("clamp_max"):
            low, high = None, (rest[0] if rest else kwargs.get("max"))
        else:
            low = rest[0] if len(rest) > 0 else kwargs.get("min")
            high = rest[1] if len(rest) > 1 else kwargs.get("max")
        if _requires_grad(low, torch) or _requires_grad(high, torch):
            return None
        x = tensor.detach()
        clipped = None
        if low is not None:
            clipped = x < _detached(low, torch)
        if high is not None:
            above = x > _detached(high, torch)
            clipped = above if clipped is None else clipped | above
        if clipped is None:
            return None
        return clipped.sum(), clipped.numel()

    def _binary_clipped(self, name: str, args, kwargs):
        """torch.max(a, b) / minimum(a, b) with one operand constant: the other loses where it is beyond it."""
        torch = self.torch
        if len(args) < 2 or kwargs:
            return None
        first, second = args[0], args[1]
        if not isinstance(first, torch.Tensor) or not isinstance(second, torch.Tensor):
            return None
        if first.requires_grad == second.requires_grad:
            return None
        varying, constant = (first, second) if first.requires_grad else (second, first)
        if not varying.is_floating_point():
            return None
        x, bound = varying.detach(), constant.detach()
        clipped = x < bound if name in ("max", "maximum", "fmax") else x > bound
        if clipped.shape != x.shape:
            return None
        return clipped.sum(), clipped.numel()

    def record(self, name: str, caller, clipped_count, elements: int) -> None:
        record = self.record_of_frame(name, caller, 2)
        record.calls += 1
        if len(record.counts) < KEPT_COUNTS or record.calls % 10 == 0:
            record.counts.append((clipped_count, elements))
            if len(record.counts) > 2 * KEPT_COUNTS:
                del record.counts[KEPT_COUNTS:KEPT_COUNTS + 10]

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        found = []
        for record in self.lines.values():
            if not record.counts:
                continue
            clipped = sum(int(count) for count, _ in record.counts)
            elements = sum(n for _, n in record.counts)
            share = clipped / elements if elements else 0.0
            fully = sum(1 for count, n in record.counts if int(count) == n)
            detail = (f"{record.function}() clipped {clipped} of {elements} elements ({share:.0%}) over "
                      f"{len(record.counts)} calls with gradient")
            if fully and all(n == 1 for _, n in record.counts):
                detail += f"; the value was clipped in {fully} of {len(record.counts)} calls"
            if share >= CLIPPED_SHARE:
                found.append(Observation("DL401", f"{detail}: those elements get exactly zero gradient",
                                         True, record.sites))
            else:
                # Below the threshold: evidence for a finding on this line, never a runtime finding of its own.
                found.append(Observation("DL401", f"below the confirmation threshold ({CLIPPED_SHARE:.0%}): {detail}",
                                         False, record.sites, summary=True))
        return found


def _requires_grad(value, torch) -> bool:
    return isinstance(value, torch.Tensor) and value.requires_grad


def _detached(value, torch):
    return value.detach() if isinstance(value, torch.Tensor) else value
