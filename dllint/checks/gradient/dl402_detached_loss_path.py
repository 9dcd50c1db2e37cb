"""DL402: the model output reaches the backpropagated loss only through a gradient-cutting operation."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.trained import is_trainable_leaf, optimized_objects
from dllint.registry import rule

MESSAGE = ("The model output reaches the backpropagated loss only through an operation that cuts the autograd "
           "graph (.detach(), .data, .item(), torch.tensor(), argmax, round or a comparison), so no gradient "
           "reaches the parameters; compute the loss from the model output directly.")


@rule("DL402")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for loss, loss_order, _ in analysis.backpropagated_losses(scope):
            barriers, live_models, live_names = [], set(), set()
            # A model call's arguments are its inputs (e.g. a detached recurrent state): not followed.
            stop = lambda node, where: analysis.is_gradient_barrier(node, where) or \
                _is_model_call(analysis, node, where, where.end)  # noqa: E731
            for node, node_scope, order in analysis.dependencies(loss, scope, loss_order, stop=stop):
                if analysis.is_gradient_barrier(node, node_scope):
                    barriers.append((node, node_scope, order))
                elif isinstance(node, cst.Name):
                    live_names.add(node.value)
                    if is_trainable_leaf(analysis, node, node_scope, order):
                        live_models.add(node.value)  # log_alpha = torch.zeros(1, requires_grad=True)
                elif _is_model_call(analysis, node, node_scope, order):
                    live_models.add(dotted_name(node.func))
                elif isinstance(node, cst.Attribute) and is_trainable_leaf(analysis, node, node_scope, order):
                    live_models.add(dotted_name(node))
            for node, node_scope, order in barriers:
                operand = _operand(analysis, node, node_scope)
                if not live_models:
                    # Nothing reaches a model except through the cut: the whole loss is constant.
                    if analysis.is_training_output(operand, node_scope, order):
                        ctx.report(node, MESSAGE, file=node_scope.file)
                        break
                elif isinstance(operand, cst.Name) and operand.value not in live_names and \
                        not _is_stop_gradient(analysis, node, node_scope) and \
                        _produced_by(analysis, operand, node_scope, order) & live_models:
                    # One output of a trained model (say, a second head) reaches the loss only through a
                    # non-differentiable conversion. An explicit .detach() there is a deliberate stop-gradient
                    # (SimSiam, BYOL targets), and so is any cut under no_grad (TD / V-trace targets computed
                    # without gradient on purpose): not reported.
                    ctx.report(node, MESSAGE, file=node_scope.file)


def _is_model_call(analysis, node, scope, order) -> bool:
    """`model(x)`, and a model's own method (`netD.adversarial_loss(x)`), whose result may depend on
    the model's parameters."""
    if not isinstance(node, cst.Call) or isinstance(node.func, cst.Call):
        return False
    if analysis.is_model_expr(node.func, scope, order):
        return True
    func = node.func
    if not isinstance(func, cst.Attribute) or isinstance(func.value, cst.Call) or \
            func.attr.value in api.GRADIENT_BARRIER_METHODS or analysis.qualify(func, scope) is not None:
        return False
    call = analysis.call_site(node, scope)
    # A method the project defines is followed into its body instead.
    if call is not None and analysis.project.callee(call) is not None:
        return False
    return analysis.is_model_expr(func.value, scope, order) or dotted_name(func.value) in optimized_objects(analysis, scope)


def _is_stop_gradient(analysis, node, scope) -> bool:
    if isinstance(node, cst.Attribute):
        return node.attr.value == "data"
    if not isinstance(node, cst.Call):
        return False
    site = analysis.call_site(node, scope)
    return site is not None and site.no_grad or \
        isinstance(node.func, cst.Attribute) and node.func.attr.value in ("detach", "detach_")


def _produced_by(analysis, name, scope, order):
    """The models whose call produces `name`."""
    return {dotted_name(o.expr.func) for o in analysis.origins(name, scope, order)
            if _is_model_call(analysis, o.expr, o.scope, o.order)}


def _operand(analysis, node, scope):
    """The expression a gradient-cutting operation is applied to."""
    if isinstance(node, cst.Attribute):
        return node.value
    if isinstance(node, cst.Comparison):
        return node.left
    is_method = isinstance(node.func, cst.Attribute) and analysis.qualify(node.func, scope) is None
    if is_method:
        return node.func.value  # out.detach(), out.argmax(1)
    return node.args[0].value if node.args else node  # torch.round(out), float(loss)
