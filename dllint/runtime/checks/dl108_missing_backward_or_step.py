"""DL108 after a run: an optimizer that steps with no backward() before its steps, or one that is built,
sees backward() reach its parameters, and never steps.

Read from the training-loop check's records: the watched steps of each optimizer and whether
backward() ran in the interval before each; the optimizers built and the gradients their parameters
received. An optimizer whose closure calls backward() inside step() (LBFGS) has backward() before
every step but its first, so it is not reported.
"""

from __future__ import annotations

from typing import List

from dllint.runtime.observations import Observation

MIN_STEPS = 2


class StepBackwardPairingCheck:
    ATTRIBUTE = "pairing"
    ORDER = 15
    CODES = ("DL108",)

    def __init__(self, probe):
        self.probe = probe

    def finish(self) -> List[Observation]:
        training = self.probe.training
        found = []
        for record in training.records:
            label = training.label(record)
            if record.watched_steps >= MIN_STEPS and record.backward_steps == 0:
                found.append(Observation(
                    "DL108", f"{label} stepped {record.steps} times, and backward() ran before none of the "
                             f"{record.watched_steps} steps checked: the optimizer steps with stale or no gradients",
                    True, training.step_sites(record), scope="function"))
            elif (record.steps == 0 and self.probe.backward_count >= MIN_STEPS
                  and any(p.grad is not None for p in record.params)):
                found.append(Observation(
                    "DL108", f"{label} was built and backward() ran {self.probe.backward_count} times, reaching its "
                             f"parameters, but it never stepped: nothing trains them", True, record.built_sites,
                    scope="function"))
        return found
