"""RT103 while a script trains: trainable parameters that receive gradients but that no optimizer holds.

The classic cause is a layer replaced after the optimizer was built (`model.fc = nn.Linear(...)` for a
new number of classes): the optimizer still holds the old layer's parameters, the new layer gets
gradients at every backward() and never changes. That case (the optimizer holds parameters the model
no longer has) is a warning. Parameters simply left out of the optimizer while they still require
gradients (a backbone fine-tuned through its head only, without requires_grad_(False)) are reported as
info: the gradients are computed for nothing, which may be deliberate.
"""

from __future__ import annotations

from typing import List, Optional, Set

from dllint.runtime.observations import Observation, Site

# Judged at this optimizer step (1-based), when every parameter the loss reaches has had a backward().
JUDGED_AT_STEP = 2
NAMED_PARAMETERS = 4


class UnoptimizedParameterCheck:
    ATTRIBUTE = "unoptimized"
    ORDER = 80
    CODES = ()
    RUNTIME_CODES = {
        "RT103": ("parameters-no-optimizer-holds", "warning",
                  "trainable parameters receive gradients but no optimizer holds them, so they never train"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.steps_seen = 0
        self.found: List[Observation] = []
        self.judged: Set[int] = set()

    def on_step(self, optimizer, sites: List[Site], loss_value: Optional[float]) -> None:
        self.steps_seen += 1
        if self.steps_seen != JUDGED_AT_STEP:
            return
        optimized = self.probe.optimizer_param_ids()
        names = self.probe.parameter_names()
        for record, module in self.probe.trained_roots():
            if id(module) in self.judged:
                continue
            self.judged.add(id(module))
            params = list(module.parameters())
            own = {id(p) for p in params}
            left_out = [p for p in params if p.requires_grad and id(p) not in optimized and p.grad is not None]
            if not left_out:
                continue
            stale = self._stale_parameters(own)
            values = sum(p.numel() for p in left_out)
            listed = ", ".join(names.get(id(p), "?") for p in left_out[:NAMED_PARAMETERS])
            more = f" and {len(left_out) - NAMED_PARAMETERS} more" if len(left_out) > NAMED_PARAMETERS else ""
            where = [sites[0]] if sites else []
            if stale:
                self.found.append(Observation(
                    "RT103", f"{len(left_out)} parameter tensors of {record.name} ({values:,} values: {listed}{more}) "
                             f"receive gradients, but no optimizer holds them, while the optimizer holds {stale} "
                             f"tensors the model no longer has: a layer was replaced after the optimizer was built; "
                             f"build the optimizer after the model is final", True, where, severity="warning"))
            else:
                self.found.append(Observation(
                    "RT103", f"{len(left_out)} parameter tensors of {record.name} ({values:,} values: {listed}{more}) "
                             f"receive gradients that no optimizer applies; if they are meant to stay fixed, "
                             f"requires_grad_(False) saves computing them", False, where, severity="info"))

    def _stale_parameters(self, model_params: Set[int]) -> int:
        """Parameters held by the optimizers of this model that no model called by the script has."""
        called: Set[int] = set()
        for root in self.probe.roots.values():
            called |= root.param_ids()
        return sum(len(record.param_ids - model_params - called) for record in self.probe.training.records
                   if record.param_ids & model_params)

    def finish(self) -> List[Observation]:
        return list(self.found)


