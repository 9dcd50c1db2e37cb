"""DL402: the model output reaches the backpropagated loss only through a gradient-cutting operation."""

import libcst as cst

from dllint.context import CheckContext
from dllint.registry import rule


@rule("DL402", "detached-loss-path", "error",
      "the loss is computed from a detached model output (.detach(), .item(), argmax, ...), so nothing trains")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for loss, loss_order, _ in analysis.backpropagated_losses(scope):
            barriers = []
            reaches_model = False
            for node, node_scope, order in analysis.dependencies(loss, scope, loss_order,
                                                                 stop=analysis.is_gradient_barrier):
                if analysis.is_gradient_barrier(node, node_scope):
                    barriers.append((node, node_scope, order))
                elif _is_model_call(analysis, node, node_scope, order):
                    reaches_model = True
                    break
            if reaches_model:
                continue
            for node, node_scope, order in barriers:
                if analysis.is_training_output(_operand(node), node_scope, order):
                    ctx.report(node, "the model output reaches the backpropagated loss only through an operation "
                                     "that cuts the autograd graph (.detach(), .data, .item(), torch.tensor(), "
                                     "argmax, round or a comparison), so no gradient reaches the parameters; "
                                     "compute the loss from the model output directly", file=node_scope.file)
                    break


def _is_model_call(analysis, node, scope, order) -> bool:
    return isinstance(node, cst.Call) and not isinstance(node.func, cst.Call) and \
        analysis.is_model_expr(node.func, scope, order)


def _operand(node):
    """The expression a gradient-cutting operation is applied to."""
    if isinstance(node, cst.Attribute):
        return node.value
    if isinstance(node, cst.Comparison):
        return node.left
    if isinstance(node.func, cst.Attribute) and not node.args:
        return node.func.value
    if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("argmax", "argmin", "round"):
        return node.func.value
    return node.args[0].value if node.args else node
