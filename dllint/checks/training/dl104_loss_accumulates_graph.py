"""DL104: a running total or list keeps every iteration's loss tensor, and its graph, alive."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import SAFE, UNSAFE, Fix, method_call
from dllint.model.builder import dotted_name
from dllint.model.syntax import used_only_as_number
from dllint.registry import rule


@rule("DL104")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        backwarded = _names_behind_backward(analysis, scope)
        backpropagated = _backpropagated_names(analysis, scope) if scope.aug_assigns else set()
        for aug in scope.aug_assigns:
            if aug.loops and _accumulates_across(scope, aug.target_text, aug.loops[-1], aug.node) and \
                    aug.target_text not in backwarded and not aug.no_grad and \
                    _runs_per_batch(analysis, aug.loops[-1]) \
                    and _is_live_loss(analysis, aug.node.value, scope, aug.order, backpropagated):
                ctx.report(aug.node, f"{aug.target_text} accumulates the loss tensor itself, keeping every "
                                     f"iteration's autograd graph alive so memory grows; accumulate "
                                     f"loss.item() (or loss.detach()).",
                           fix=Fix(SAFE if used_only_as_number(scope.node, aug.target_text) else UNSAFE,
                                   "accumulate .item()", aug.node.value, method_call(aug.node.value, "item")))
        for call in scope.calls:
            if call.method != "append" or not call.loops or len(call.node.args) != 1:
                continue
            if call.receiver_text in backwarded or not _accumulates_across(scope, call.receiver_text, call.loops[-1]) \
                    or not _runs_per_batch(analysis, call.loops[-1]):
                continue
            value = call.node.args[0].value
            if not call.no_grad and _is_live_loss(analysis, value, scope, call.order):
                ctx.report(value, f"{call.receiver_text} collects the loss tensor itself, keeping every "
                                  f"iteration's autograd graph alive so memory grows; append loss.item() "
                                  f"(or loss.detach()).",
                           fix=Fix(UNSAFE, "append .item()", value, method_call(value, "item")))


def _accumulates_across(scope, name, loop, own=None) -> bool:
    """Defined before the loop and never reset inside it."""
    if not name or "." in name:
        return False
    definitions = scope.definitions.get(name, [])
    before = [d for d in definitions if d.order < loop.start]
    inside = [d for d in definitions if loop.contains(d.order) and d.node is not own and d.kind != "augassign"]
    return bool(before) and not inside


def _runs_per_batch(analysis, loop) -> bool:
    """A loop over data, or one that steps an optimizer, keeps a graph per update alive. A loop inside
    one update builds that update's loss: over the parts of one loss (feature levels, anchors, scales
    of a perceptual criterion), or over micro-batches backpropagated before the one step."""
    return analysis.is_batch_loop(loop) or any(event.kind == "step" for event in analysis.loop_events(loop))


def _is_live_loss(analysis, value, scope, order, backpropagated=frozenset()) -> bool:
    """A tensor computed from a loss with its graph attached (not .item(), .detach(), float(...)): a
    torch loss, or a variable this scope backpropagates (whatever criterion computed it)."""
    for node, node_scope, node_order in analysis.dependencies(value, scope, order, stop=analysis.is_gradient_barrier):
        if isinstance(node, cst.Name) and node_scope is scope and node.value in backpropagated:
            return True
        if isinstance(node, cst.Call) and not analysis.is_gradient_barrier(node, node_scope) and \
                analysis.loss_kind_of_node(node, node_scope, node_order):
            return True
    return False


def _backpropagated_names(analysis, scope):
    """`loss` for `loss.backward()` in this scope."""
    return {loss.value for loss, _, _ in analysis.backpropagated_losses(scope) if isinstance(loss, cst.Name)}


def _names_behind_backward(analysis, scope):
    """Names the backpropagated losses are computed from: summing losses into the loss itself is fine."""
    names = set()
    for loss, order, _ in analysis.backpropagated_losses(scope):
        names.update(dotted_name(node) for node, _, _ in analysis.dependencies(loss, scope, order)
                     if isinstance(node, cst.Name))
    return names
