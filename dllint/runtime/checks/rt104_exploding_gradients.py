"""RT104 after a run: gradient norms that exploded over the watched steps while the loss stayed finite.

The training-loop check measures each optimizer's total gradient norm at its watched steps (the first
six, then one in four). A norm that grew GROWTH-fold from the first watched step and ended above
MIN_FINAL_NORM means the updates are running away (a learning rate too high, a loss that diverges)
before anything turns NaN. Gradients that accumulate because nothing clears them (DL101) also grow:
those optimizers are left to DL101.
"""

from __future__ import annotations

from typing import List

from dllint.runtime.observations import Observation

GROWTH = 100.0
MIN_FINAL_NORM = 10.0
MIN_WATCHED_STEPS = 4


class ExplodingGradientCheck:
    ATTRIBUTE = "explosion"
    ORDER = 90
    CODES = ()
    RUNTIME_CODES = {
        "RT104": ("exploding-gradients", "warning",
                  "the gradient norm grew by orders of magnitude over the run while the loss stayed finite"),
    }

    def __init__(self, probe):
        self.probe = probe

    def finish(self) -> List[Observation]:
        training = self.probe.training
        found = []
        for record in training.records:
            norms, steps = record.norms, record.norm_steps
            if len(norms) < MIN_WATCHED_STEPS or not norms[0] > 0 or record.accumulating_steps:
                continue
            peak = max(range(len(norms)), key=lambda i: norms[i])
            if norms[peak] >= GROWTH * norms[0] and norms[peak] >= MIN_FINAL_NORM:
                found.append(Observation(
                    "RT104", f"optimizer {record.index} ({record.name}): the gradient norm grew from {norms[0]:.3g} at "
                             f"step {steps[0]} to {norms[peak]:.3g} at step {steps[peak]} "
                             f"({norms[peak] / norms[0]:.3g}-fold): the updates run away; lower the learning rate or "
                             f"clip the gradients", True, training.step_sites(record), severity="warning"))
        return found
