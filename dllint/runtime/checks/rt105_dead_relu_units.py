"""RT105 while a script trains: ReLU layers whose units output zero for every sample of the batch.

A unit whose input is negative for every sample never passes a gradient again: it is dead for good. A
large negative bias at initialisation, or a learning rate that pushed the weights far, kills most of a
layer, and the model trains on what is left without any error. At a few training forwards (after the
first step, and near the step budget) every nn.ReLU module of each trained model gets a one-call
forward hook that counts the units (channels of a convolution's output, features of a linear one)
that are zero for the whole batch. A layer with at least DEAD_SHARE of its units dead at the last
measurement is reported; the last measurement counts, since units that recover were not dead.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set

from dllint.runtime.observations import Observation

DEAD_SHARE = 0.5
MIN_SAMPLES = 8
MIN_UNITS = 4


class DeadReluCheck:
    ATTRIBUTE = "dead_relu"
    ORDER = 95
    CODES = ()
    RUNTIME_CODES = {
        "RT105": ("dead-relu-units", "warning",
                  "most units of a ReLU layer output zero for every sample: they pass no gradient again"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.measured_at: Dict[int, Set[int]] = {}  # id(model) -> steps at which it was measured
        # (id(model), layer name) -> (dead units, units, step, site of the model's call)
        self.latest: Dict[tuple, tuple] = {}
        self.names: Dict[int, str] = {}

    def _measure_now(self) -> Optional[int]:
        steps, budget = self.probe.steps, self.probe.step_budget
        for moment in (1, max(1, budget - 1)):
            if steps == moment:
                return moment
        return None

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        step = self._measure_now()
        if step is None or not grad_enabled or step in self.measured_at.setdefault(id(module), set()):
            return
        if not {id(p) for p in module.parameters()} & self.probe.optimizer_param_ids():
            return
        self.measured_at[id(module)].add(step)
        self.names[id(module)] = record.name
        site = self.probe.user_site(depth=4)
        relu = self.torch.nn.ReLU
        for name, layer in module.named_modules():
            if isinstance(layer, relu):
                self._hook_once(layer, (id(module), name), step, site)

    def _hook_once(self, layer, key, step: int, site) -> None:
        check = self
        handle = None

        def measure(_layer, _inputs, output):
            handle.remove()
            try:
                check._count(key, output, step, site)
            except Exception as error:
                check.probe.internal_error("dead ReLU hook", error)

        handle = layer.register_forward_hook(measure)

    def _count(self, key, output, step: int, site) -> None:
        torch = self.torch
        # (N, features) after a linear layer, (N, C, ...) after a convolution; (N, T, F) is left alone (the
        # units are not dimension 1 there).
        if not isinstance(output, torch.Tensor) or output.dim() not in (2, 4, 5) or output.shape[0] < MIN_SAMPLES:
            return
        with torch.no_grad():
            # Units: dimension 1 (channels, or the features of a 2-D output); zero over every other dimension.
            units = output.detach().transpose(0, 1).reshape(output.shape[1], -1)
            dead = int((units == 0).all(dim=1).sum())
        if units.shape[0] >= MIN_UNITS:
            self.latest[key] = (dead, units.shape[0], step, site)

    def finish(self) -> List[Observation]:
        found = []
        for (model, name), (dead, units, step, site) in self.latest.items():
            if dead >= DEAD_SHARE * units:
                found.append(Observation(
                    "RT105", f"{dead} of the {units} units of {self.names.get(model, 'the model')}.{name} (ReLU) "
                             f"output zero for every sample of the batch at step {step}: they pass no gradient and "
                             f"never recover; check the initialisation (biases) and lower the learning rate",
                    True, [site] if site else [], severity="warning"))
        return found
