"""DL109 and RT103 while a script trains: trainable parameters that receive gradients but that no
optimizer holds.

DL109: a layer assigned to a model after an optimizer was built over the model's parameters
(`model.fc = nn.Linear(...)` for a new number of classes): the new layer gets gradients at every
backward() and never changes. Module assignments are watched (nn.Module.__setattr__, which
`model.classifier[6] = ...` goes through too) once an optimizer exists, so the evidence names the
assignment's line. RT103: the same parameters without a watched assignment; a warning when the
optimizer still holds parameters the model no longer has (a layer replaced by other means), info when
parameters were simply left out while they still require gradients (a backbone fine-tuned through its
head only, without requires_grad_(False): gradients computed for nothing, which may be deliberate).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from dllint.runtime.observations import Observation, Site

# Judged at this optimizer step (1-based), when every parameter the loss reaches has had a backward().
JUDGED_AT_STEP = 2
NAMED_PARAMETERS = 4


class UnoptimizedParameterCheck:
    ATTRIBUTE = "unoptimized"
    ORDER = 80
    CODES = ("DL109",)
    RUNTIME_CODES = {
        "RT103": ("parameters-no-optimizer-holds", "warning",
                  "trainable parameters receive gradients but no optimizer holds them, so they never train"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.steps_seen = 0
        self.found: List[Observation] = []
        self.judged: Set[int] = set()
        # Modules with parameters assigned onto a module an optimizer trains: (module, site, "Owner.name").
        self.assigned: List[Tuple[object, Site, str]] = []

    def install(self) -> None:
        module_class = self.torch.nn.Module
        original = module_class.__setattr__
        check = self

        def setattr_watching(self_module, name, value):
            original(self_module, name, value)
            if isinstance(value, module_class) and check.probe.training.records:
                try:
                    check._assigned(self_module, name, value)
                except Exception as error:
                    check.probe.internal_error("Module.__setattr__ wrapper", error)

        setattr_watching.__wrapped__ = original
        module_class.__setattr__ = setattr_watching

    def _assigned(self, owner, name: str, value) -> None:
        if len(self.assigned) >= 16:
            return
        new = {id(p) for p in value.parameters()}
        optimized = self.probe.optimizer_param_ids()
        if not new or new & optimized or not {id(p) for p in owner.parameters()} & optimized:
            return
        site = self.probe.user_site(depth=3)
        if site is not None:
            self.assigned.append((value, site, f"{type(owner).__name__}.{name}"))

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
            left_out = [p for p in params if p.requires_grad and id(p) not in optimized and p.grad is not None]
            if left_out:
                self._report(record.name, params, left_out, names, [sites[0]] if sites else [])

    def _report(self, model: str, params, left_out, names: Dict[int, str], step_sites: List[Site]) -> None:
        values = sum(p.numel() for p in left_out)
        listed = ", ".join(names.get(id(p), "?") for p in left_out[:NAMED_PARAMETERS])
        more = f" and {len(left_out) - NAMED_PARAMETERS} more" if len(left_out) > NAMED_PARAMETERS else ""
        what = f"{len(left_out)} parameter tensors of {model} ({values:,} values: {listed}{more})"
        left_ids = {id(p) for p in left_out}
        for layer, site, attribute in self.assigned:
            if {id(p) for p in layer.parameters()} & left_ids:
                self.found.append(Observation(
                    "DL109", f"{attribute} was assigned after the optimizer was built: {what} receive gradients, "
                             f"but no optimizer holds them, so they never train", True, [site] + step_sites))
                return
        stale = self._stale_parameters({id(p) for p in params})
        if stale:
            self.found.append(Observation(
                "RT103", f"{what} receive gradients, but no optimizer holds them, while the optimizer holds {stale} "
                         f"tensors the model no longer has: a layer was replaced after the optimizer was built; "
                         f"build the optimizer after the model is final", True, step_sites, severity="warning"))
        else:
            self.found.append(Observation(
                "RT103", f"{what} receive gradients that no optimizer applies; if they are meant to stay fixed, "
                         f"requires_grad_(False) saves computing them", False, step_sites, severity="info"))

    def _stale_parameters(self, model_params: Set[int]) -> int:
        """Parameters held by the optimizers of this model that no model called by the script has."""
        called: Set[int] = set()
        for root in self.probe.roots.values():
            called |= root.param_ids()
        return sum(len(record.param_ids - model_params - called) for record in self.probe.training.records
                   if record.param_ids & model_params)

    def finish(self) -> List[Observation]:
        return list(self.found)
