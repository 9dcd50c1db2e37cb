"""DL108: a training loop steps the optimizer without backward(), or backpropagates and never steps."""


import libcst as cst

from dllint.context import CheckContext, scope_source
from dllint.model import torch_api as api
from dllint.model.builder import descendants
from dllint.model.loops import loop_chain
from dllint.registry import rule


@rule("DL108")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        kinds = {e.kind for e in events}
        if "step" in kinds and "backward" not in kinds:
            _step_without_backward(ctx, scope, events)
        elif "backward" in kinds and "optimizer_ctor" in kinds:
            _optimizers_never_stepped(ctx, scope, events)


def _step_without_backward(ctx: CheckContext, scope, events) -> None:
    if any(e.kind == "backward" for nested in scope.nested_functions.values() for e in ctx.analysis.events(nested)):
        return  # a closure defined here backpropagates
    if api.MANUAL_GRADIENT_WRITE.search(scope_source(scope.file, scope)):
        return
    for step in events:
        if step.kind != "step" or not loop_chain(step):
            continue
        node = step.call.node
        if step.detail != "scaler" and node.args:
            continue  # optimizer.step(closure): the closure backpropagates
        loop = loop_chain(step)[-1]
        if not _computes_loss(ctx, scope, loop):
            continue
        optimizer = step.receiver or "the optimizer"
        ctx.report(step.node, f"{optimizer}.step() runs every iteration but no backward() is called on the loss, so "
                              f"there are no gradients and the weights never change; call loss.backward() before the "
                              f"step.", file=step.call.scope.file)
        return


def _computes_loss(ctx: CheckContext, scope, loop) -> bool:
    """Does the loop compute a loss (a torch loss call, or a value named as one)?"""
    if any(loop.contains(loss.call.order) for loss in ctx.analysis.loss_calls(scope)):
        return True
    return any("loss" in name.lower() and any(loop.contains(d.order) for d in definitions)
               for name, definitions in scope.definitions.items())


def _optimizers_never_stepped(ctx: CheckContext, scope, events) -> None:
    """Optimizers built here, with backward() in a loop after them, that no step reaches."""
    built = {}
    for ctor in events:
        if ctor.kind == "optimizer_ctor" and not ctor.helpers:
            names = [name for name, definitions in scope.definitions.items()
                     if any(d.value is ctor.call.node for d in definitions)]
            if len(names) == 1:
                built[names[0]] = ctor
    stepped = {e.receiver for e in events if e.kind == "step"}
    if not built or stepped - set(built):
        return  # a step on an optimizer spelled otherwise (self.opt, opts[i]) may be any of them
    for name, ctor in built.items():
        if name in stepped or _handed_on(ctx, scope, name):
            continue
        backward = next((e for e in events if e.kind == "backward" and loop_chain(e) and
                         e.site_order > ctor.site_order), None)
        if backward is None:
            continue
        ctx.report(ctor.node, f"{name} is built here and backward() runs in the loop at "
                              f"{ctx.location(backward.node, backward.call.scope.file)}, but {name}.step() is never "
                              f"called, so these weights never change; call {name}.step() after backward().")


def _handed_on(ctx: CheckContext, scope, name: str) -> bool:
    """Is the optimizer used in any way other than clearing it, reading or setting its learning rate and
    state, or building an LR scheduler over it? (Passed to a trainer or helper, aliased, put in a list:
    something else may step it.)"""
    if any(call.method == "step" and ctx.analysis.object_role(call.node.func.value, scope, call.order) is None
           for call in scope.calls if isinstance(call.node.func, cst.Attribute)):
        return True  # a step on something unrecognized may be this optimizer under another spelling
    harmless = set()
    for call in scope.calls:
        if ".lr_scheduler" in (ctx.analysis.qualify(call.node.func, scope) or ""):
            harmless.update(id(arg.value) for arg in call.node.args)
    for definition in scope.definitions.get(name, []):
        if isinstance(definition.node, cst.Assign):
            harmless.update(id(t.target) for t in definition.node.targets)
    for node in descendants(scope.node):
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and \
                node.attr.value in api.OPTIMIZER_BOOKKEEPING:
            harmless.add(id(node.value))
        elif isinstance(node, cst.Name) and node.value == name and id(node) not in harmless:
            return True
    return False
