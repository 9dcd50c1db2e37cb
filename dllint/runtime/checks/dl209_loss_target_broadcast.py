"""DL209 while a script trains: a regression loss whose prediction and target shapes broadcast to a larger
comparison, typically (N, 1) against (N,) making (N, N).

mse_loss / l1_loss / smooth_l1_loss / huber_loss are wrapped (their modules call them). Every call
written in the user's files compares the two shapes (no GPU wait); the first broadcasting call at each
line also computes the loss on matched shapes, so the evidence shows how far the value the script
trains on is from the elementwise one.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import List, Optional

from dllint.runtime.hooks import LineCheck, LineRecord, wrap_calls
from dllint.runtime.observations import Observation, shape_text as _shape

REGRESSION_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")


@dataclass(eq=False)
class BroadcastSite(LineRecord):
    calls: int = 0
    broadcast_calls: int = 0
    first: Optional[tuple] = None  # (prediction shape, target shape, combined shape)
    values: Optional[tuple] = None  # (loss as computed, loss on matched shapes)


class LossBroadcastCheck(LineCheck):
    ATTRIBUTE = "broadcast"
    ORDER = 22
    CODES = ("DL209",)
    UNOBSERVABLE = {"DL209": "the loss ran with prediction and target of the same shape"}
    RECORD = BroadcastSite

    def install(self) -> None:
        wrap_calls(self.probe, self.torch.nn.functional, REGRESSION_LOSSES, self.on_call)

    def on_call(self, function: str, original, args, kwargs) -> None:
        prediction = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        torch = self.torch
        if (isinstance(prediction, torch.Tensor) and isinstance(target, torch.Tensor)
                and prediction.shape != target.shape):
            self.on_mismatch(function, original, prediction, target, args, kwargs)

    def on_mismatch(self, function: str, original, prediction, target, args, kwargs) -> None:
        try:
            combined = tuple(self.torch.broadcast_shapes(prediction.shape, target.shape))
        except RuntimeError:
            return  # the loss itself raises
        if math.prod(combined) <= max(prediction.numel(), target.numel()):
            return
        sites = self.probe.user_sites(depth=4)
        if not sites:
            return
        record = self.record_at(function, sites)
        record.broadcast_calls += 1
        if record.first is None:
            record.first = (tuple(prediction.shape), tuple(target.shape), combined)
            record.values = self._values(original, prediction, target, args, kwargs)

    def _values(self, original, prediction, target, args, kwargs) -> Optional[tuple]:
        if prediction.numel() != target.numel():
            return None
        original = inspect.unwrap(original)  # not through the other checks' wrappers: this is no user call
        with self.torch.no_grad():
            rest = {key: value for key, value in kwargs.items() if key not in ("input", "target")}
            as_computed = original(prediction.detach(), target.detach(), *args[2:], **rest)
            matched = original(prediction.detach().reshape(target.shape), target.detach(), *args[2:], **rest)
            if as_computed.numel() != 1:
                return None
            return float(as_computed), float(matched)

    def finish(self) -> List[Observation]:
        found = []
        for record in self.lines.values():
            prediction, target, combined = record.first
            pairs = math.prod(combined)
            elementwise = max(math.prod(prediction), math.prod(target))
            values = ""
            if record.values is not None:
                values = (f"; the loss it returned was {record.values[0]:.4g}, the same loss on matched shapes "
                          f"{record.values[1]:.4g}")
            found.append(Observation(
                "DL209", f"{record.function} compared a prediction of shape {_shape(prediction)} with a target of "
                         f"shape {_shape(target)} in {record.broadcast_calls} calls: broadcasting made each a "
                         f"{_shape(combined)} comparison of every prediction with every target ({pairs:,} pairs "
                         f"instead of {elementwise:,}){values}; reshape one side (prediction.squeeze(1) or "
                         f"target.unsqueeze(1))", True, record.sites))
        return found
