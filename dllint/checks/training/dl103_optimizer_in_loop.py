"""DL103: an optimizer constructed inside the training loop loses its state every iteration."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model.builder import dotted_name
from dllint.model.loops import conditional_in_loop, in_loop
from dllint.registry import rule


@rule("DL103")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for event in events:
            if event.kind != "optimizer_ctor" or event.helpers or not event.loops:
                continue
            loop = event.loops[-1]
            if conditional_in_loop(event.call, loop):
                continue  # switching optimizers at a phase boundary (if epoch == k) is deliberate
            if not any(e.kind in ("step", "backward") for e in in_loop(events, loop)):
                continue
            model = _optimized_model(event.call.node)
            if model is not None and any(loop.contains(d.order) for d in scope.definitions.get(model, [])):
                continue  # a fresh model per trial or fold gets a fresh optimizer: correct
            ctx.report(event.node, "the optimizer is rebuilt on every iteration of the training loop, so its "
                                   "momentum / adaptive state starts from zero each time; create it once before "
                                   "the loop")


def _optimized_model(ctor: cst.Call):
    """`model` in `SGD(model.parameters(), ...)`."""
    if not ctor.args:
        return None
    params = ctor.args[0].value
    if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute):
        base = dotted_name(params.func.value)
        return base.split(".")[0] if base else None
    return None

