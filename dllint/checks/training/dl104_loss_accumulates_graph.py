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
            target = aug.target_text or _container_root(aug.node.target)
            loop = _batch_loop(analysis, aug.loops)
            if loop is not None and _accumulates_across(scope, target, loop, aug.node) and \
                    target not in backwarded and not aug.no_grad and \
                    _is_live_loss(analysis, aug.node.value, scope, aug.order, backpropagated):
                ctx.report(aug.node, f"{aug.target_text or target} accumulates the loss tensor itself, keeping every "
                                     f"iteration's autograd graph alive so memory grows; accumulate "
                                     f"loss.item() (or loss.detach()).",
                           fix=Fix(SAFE if aug.target_text and used_only_as_number(scope.node, aug.target_text) else UNSAFE,
                                   "accumulate .item()", aug.node.value, method_call(aug.node.value, "item")))
        for call in scope.calls:
            if call.method != "append" or not call.loops or len(call.node.args) != 1:
                continue
            receiver = call.receiver_text or _container_root(call.node.func.value)  # losses[key].append(...)
            loop = _batch_loop(analysis, call.loops)
            if receiver in backwarded or loop is None or not _accumulates_across(scope, receiver, loop):
                continue
            value = call.node.args[0].value
            if not call.no_grad and _is_live_loss(analysis, value, scope, call.order):
                ctx.report(value, f"{call.receiver_text or receiver} collects the loss tensor itself, keeping every "
                                  f"iteration's autograd graph alive so memory grows; append loss.item() "
                                  f"(or loss.detach()).",
                           fix=Fix(UNSAFE, "append .item()", value, method_call(value, "item")))


def _container_root(target):
    """`logs` for `logs[key]`: a per-key entry of a container that lives as long as the container."""
    return target.value.value if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) else None


def _accumulates_across(scope, name, loop, own=None) -> bool:
    """Defined before the loop and never reset inside it."""
    if not name or "." in name:
        return False
    definitions = scope.definitions.get(name, [])
    before = [d for d in definitions if d.order < loop.start]
    inside = [d for d in definitions if loop.contains(d.order) and d.node is not own and d.kind != "augassign"]
    return bool(before) and not inside


def _batch_loop(analysis, loops):
    """The innermost loop around a statement that runs per batch (an inner loop over the terms of one
    loss, `for key, value in losses.items()`, repeats within one step)."""
    return next((loop for loop in reversed(loops) if _runs_per_batch(analysis, loop)), None)


def _runs_per_batch(analysis, loop) -> bool:
    """A loop over data, or one that steps an optimizer, keeps a graph per update alive. A loop inside
    one update builds that update's loss: over the parts of one loss (feature levels, anchors, scales
    of a perceptual criterion), or over micro-batches backpropagated before the one step."""
    return analysis.is_batch_loop(loop) or any(event.kind == "step" for event in analysis.loop_events(loop))


def _is_live_loss(analysis, value, scope, order, backpropagated=frozenset()) -> bool:
    """A tensor computed from a loss with its graph attached (not .item(), .detach(), float(...)): a
    torch loss, or a variable this scope backpropagates (whatever criterion computed it)."""
    for node, node_scope, node_order in analysis.dependencies(value, scope, order, stop=analysis.is_gradient_barrier):
        if isinstance(node, (cst.Name, cst.Attribute)) and node_scope is scope and \
                dotted_name(node) in backpropagated:
            return True
        if isinstance(node, cst.Call) and not analysis.is_gradient_barrier(node, node_scope) and \
                analysis.loss_kind_of_node(node, node_scope, node_order):
            return True
    return False


def _backpropagated_names(analysis, scope):
    """`loss` for `loss.backward()` in this scope; `outputs.loss` for `outputs.loss.backward()`."""
    return {dotted_name(loss) for loss, _, _ in analysis.backpropagated_losses(scope)
            if isinstance(loss, (cst.Name, cst.Attribute)) and dotted_name(loss)}


def _names_behind_backward(analysis, scope):
    """Names the backpropagated losses are computed from: summing losses into the loss itself is fine."""
    names = set()
    for loss, order, _ in analysis.backpropagated_losses(scope):
        names.update(dotted_name(node) for node, _, _ in analysis.dependencies(loss, scope, order)
                     if isinstance(node, cst.Name))
    return names
