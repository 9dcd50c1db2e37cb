"""DL105: an epoch-style learning-rate scheduler stepped once per batch."""

import re
from typing import Optional

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.flow import bound_argument
from dllint.model.loops import conditional_in_loop, loop_chain
from dllint.registry import rule

_PER_STEP_SIZING = re.compile(r"step|iter|len\(|batch|total", re.IGNORECASE)


@rule("DL105", "epoch-scheduler-per-batch", "error",
      "an epoch-style LR scheduler is stepped inside the batch loop, decaying the learning rate far too fast")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        steps = [e for e in events if e.kind == "step"]
        for event in events:
            if event.kind != "scheduler_step" or not loop_chain(event):
                continue
            loop = loop_chain(event)[-1]
            if not any(loop_chain(s) and loop_chain(s)[-1] is loop for s in steps):
                continue  # not the loop that steps the optimizer: an epoch loop
            if event.call.loops and event.call.loops[-1] is loop and conditional_in_loop(event.call, loop):
                continue
            func = event.call.node.func
            kinds = {_epoch_style(i) for i in analysis.instances(func.value, event.call.scope, event.call.order)}
            if len(kinds) != 1:
                continue
            name = kinds.pop()
            if name:
                ctx.report(event.node, f"{name} counts epochs but {event.receiver}.step() runs once per batch, so the "
                                       f"learning rate decays len(loader) times too fast; step it once per epoch, "
                                       f"after the batch loop", file=event.call.scope.file)


def _epoch_style(instance) -> Optional[str]:
    name = instance.torch_name
    if name not in api.EPOCH_SCHEDULERS or instance.ctor is None:
        return None
    if name != "CosineAnnealingLR":
        return name
    t_max = bound_argument(instance.ctor, "T_max", 1)
    if t_max is None:
        return None
    if isinstance(t_max, cst.Integer):
        return name if int(t_max.value) <= 1000 else None
    text = cst.Module([]).code_for_node(t_max)
    if "epoch" in text.lower() and not _PER_STEP_SIZING.search(text):
        return name
    return None
