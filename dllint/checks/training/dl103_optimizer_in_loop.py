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
            optimized = _optimized_names(event.call.node)
            if optimized and all(any(loop.contains(d.order) for d in scope.definitions.get(name, []))
                                 for name in optimized):
                # A fresh model per trial or fold, or a tensor re-created each iteration (an input image
                # optimized from scratch), gets a fresh optimizer: correct.
                continue
            ctx.report(event.node, "The optimizer is rebuilt on every iteration of the training loop, so its "
                                   "momentum / adaptive state starts from zero each time; create it once before "
                                   "the loop.")


def _optimized_names(ctor: cst.Call):
    """`model` in `SGD(model.parameters(), ...)`; `image` and `noise` in `Adam([image, noise], ...)`."""
    if not ctor.args:
        return []
    params = ctor.args[0].value
    if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute):
        base = dotted_name(params.func.value)
        return [base.split(".")[0]] if base else []
    if isinstance(params, (cst.List, cst.Tuple)) and params.elements and \
            all(isinstance(e.value, cst.Name) for e in params.elements):
        return [e.value.value for e in params.elements]
    return []
