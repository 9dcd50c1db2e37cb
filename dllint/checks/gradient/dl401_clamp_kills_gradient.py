"""DL401: min/max/clamp with a constant bound on a model output or loss that is backpropagated."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.bounds import clamped_value, function_name, lower_bound, two_bounds
from dllint.registry import rule


@rule("DL401")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for loss, loss_order, _ in analysis.backpropagated_losses(scope):
            guarded = set()
            for node, node_scope, order in analysis.dependencies(loss, scope, loss_order,
                                                                 stop=analysis.is_gradient_barrier):
                if not isinstance(node, cst.Call):
                    continue
                name = function_name(node, analysis, node_scope)
                if name in api.EPS_GUARDED_FUNCTIONS:
                    guarded.update(id(a.value) for a in node.args)
                    if isinstance(node.func, cst.Attribute):
                        guarded.add(id(node.func.value))
                clamped = clamped_value(node, name, analysis, node_scope)
                if clamped is None or id(node) in guarded or _is_epsilon_guard(analysis, node, node_scope):
                    continue
                if node_scope is not scope and node_scope.name == "forward" and \
                        not _bounds_the_output(analysis, node, node_scope):
                    continue  # inside a model, only a clamp of what it returns is a clamp of its output
                if lower_bound(analysis, node, node_scope) == 0 and _is_margin(analysis, clamped, node_scope, order) \
                        and not _into_criterion(analysis, node, node_scope):
                    continue  # clamp(1 - y * out, min=0), clamp((1 - y) * cos, min=0): the hinge of the loss itself
                if analysis.is_training_output(clamped, node_scope, order, with_gradient=True):
                    ctx.report(node, f"{name}() with a constant bound on a model output or loss that is "
                                     f"backpropagated: every clipped element gets zero gradient and stops learning; "
                                     f"remove the clamp from the training path (clamp only for metrics or outputs).",
                               file=node_scope.file)


def _bounds_the_output(analysis, call, forward) -> bool:
    """Is the clamp what forward returns (`return depth.clamp(0, 10)`, or `depth.clamp_(0, 10)` on the
    returned name)? A clamp of an intermediate (`logvar.clamp(-30, 20)`) keeps a computation stable."""
    in_place = isinstance(call.func, cst.Attribute) and call.func.attr.value.endswith("_")
    for order, value in forward.returns:
        if any(origin.expr is call for origin in analysis.origins(value, forward, order)):
            return True
        if in_place and value is not None and dotted_name(value) == dotted_name(call.func.value):
            return True
    return False


def _is_margin(analysis, clamped, scope, order) -> bool:
    """Arithmetic on the output (a margin, or a pair's term weighted by its label), directly or through a name."""
    values = [o.expr for o in analysis.origins(clamped, scope, order)] or [clamped]
    return all(isinstance(v, cst.UnaryOperation) or (isinstance(v, cst.BinaryOperation) and
                                                     isinstance(v.operator, (cst.Subtract, cst.Add, cst.Multiply)))
               for v in values)


def _into_criterion(analysis, clamp, scope) -> bool:
    """Is the clamped value then handed to a loss function as its prediction (a clipped output, not a hinge)?"""
    return any(any(o.expr is clamp for o in analysis.origins(loss.input, scope, loss.call.order))
               for loss in analysis.loss_calls(scope))


def _is_epsilon_guard(analysis, call: cst.Call, scope) -> bool:
    """clamp(min=1e-7), or clamp(p, 1e-6, 1 - 1e-6) on a probability, only keeps values off 0 and 1
    (before a log or a division): not a real clip."""
    low = lower_bound(analysis, call, scope)
    if low is not None:
        return 0 < low <= 1e-3
    bounds = two_bounds(analysis, call, scope)
    return bounds is not None and 0 < bounds[0] <= 1e-3 and 1 - 1e-3 <= bounds[1] < 1
