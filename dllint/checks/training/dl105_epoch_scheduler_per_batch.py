"""DL105: an epoch-style learning-rate scheduler stepped once per batch."""

from typing import Optional

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.flow import bound_argument
from dllint.model.loops import conditional_in_loop, loop_chain
from dllint.registry import rule


@rule("DL105")
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
                                       f"after the batch loop.", file=event.call.scope.file)


# Nobody trains for more epochs than this: a larger horizon counts iterations.
_MAX_EPOCHS = 1000


def _epoch_style(instance) -> Optional[str]:
    name = instance.torch_name
    if name not in api.EPOCH_SCHEDULERS or instance.ctor is None:
        return None
    if name not in api.SCHEDULER_HORIZON_ARGUMENTS:
        return name
    horizon = bound_argument(instance.ctor, api.SCHEDULER_HORIZON_ARGUMENTS[name], 1)
    if horizon is None:
        return None if name == "CosineAnnealingLR" else name
    numbers = [int(n.value) for n in _integers(horizon)]
    if numbers:
        return name if max(numbers) <= _MAX_EPOCHS else None
    text = cst.Module([]).code_for_node(horizon)
    if name == "CosineAnnealingLR":
        # T_max is as often iterations as epochs: only an explicit epoch count makes it epoch-style.
        return name if "epoch" in text.lower() and not api.PER_STEP_SIZING_NAME.search(text) else None
    return None if api.ITERATION_SIZING_NAME.search(text) else name  # iterations: stepping per batch is the intent


def _integers(expr):
    """Integer literals of a number or of a list/tuple of numbers (MultiStepLR milestones)."""
    if isinstance(expr, cst.Integer):
        return [expr]
    if isinstance(expr, (cst.List, cst.Tuple)):
        return [e.value for e in expr.elements if isinstance(e.value, cst.Integer)]
    return []
