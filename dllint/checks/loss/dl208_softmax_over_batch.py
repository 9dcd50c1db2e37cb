"""DL208: softmax/log_softmax over dim=0, the batch, of a (batch, classes) output."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.flow import bound_argument
from dllint.registry import rule


@rule("DL208")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    analysis = ctx.analysis
    for scope in ctx.scopes:
        batched = scope.name in api.BATCH_STEP_METHODS or any(analysis.is_batch_loop(l) for l in scope.loops)
        reported = set()
        for loss in analysis.loss_calls(scope):
            if loss.kind not in api.CLASS_LOSS_KINDS or not (batched and _in_batch_loop(analysis, loss.call)):
                continue
            source = analysis.value_source(loss.input, scope, loss.call.order)
            if source is not None and _over_dim_zero(analysis, source) and id(source.node) not in reported and \
                    not _axes_moved(analysis, loss.input, scope, loss.call.order):
                reported.add(id(source.node))
                ctx.report(loss.input, f"The loss input comes from {ctx.describe_source(source)}, computed over "
                                       f"dim=0 (the batch): each class column sums to 1 across samples instead of "
                                       f"each sample across classes; use dim=1 (or dim=-1).")
        for call in scope.calls:
            # probs.argmax(dim=1) of a softmax over dim=0: the classes are on dim 1, the softmax ran over the batch
            if call.method not in ("argmax", "max", "topk") or not isinstance(call.node.func, cst.Attribute):
                continue
            reduced = bound_argument(call.node, "dim", 0 if call.method != "topk" else 1)
            if not (isinstance(reduced, cst.Integer) and reduced.value == "1" or
                    isinstance(reduced, cst.UnaryOperation) and getattr(reduced.expression, "value", "") == "1"):
                continue
            source = analysis.value_source(call.node.func.value, scope, call.order)
            if source is not None and _over_dim_zero(analysis, source) and id(source.node) not in reported:
                reported.add(id(source.node))
                ctx.report(call.node, f"This prediction reads the classes from dim 1 of {ctx.describe_source(source)}, "
                                      f"computed over dim=0 (the batch), so the probabilities compare samples, not "
                                      f"classes; use dim=1 in the softmax.")


def _axes_moved(analysis, expr, scope, order) -> bool:
    """Is the result transposed on its way to the loss (`log_softmax(sim, dim=0).t()`: the column-wise
    direction of a contrastive loss)?"""
    for node, _, _ in analysis.dependencies(expr, scope, order):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
                node.func.attr.value in ("t", "transpose", "permute", "movedim", "swapaxes"):
            return True
        if isinstance(node, cst.Attribute) and node.attr.value in ("T", "mT"):
            return True
    return False


def _in_batch_loop(analysis, call) -> bool:
    return call.scope.name in api.BATCH_STEP_METHODS or any(analysis.is_batch_loop(l) for l in call.loops)


def _over_dim_zero(analysis, source) -> bool:
    """Is the softmax/log_softmax of `source` taken over dim 0 (F.softmax(x, 0), x.softmax(dim=0),
    nn.Softmax(dim=0))?"""
    node = source.node
    if source.kind not in ("softmax", "log_softmax") or not isinstance(node, cst.Call):
        return False
    scope = source.scope
    qualified = analysis.qualify(node.func, scope) if scope is not None else None
    if qualified and qualified.rsplit(".", 1)[-1] in ("Softmax", "LogSoftmax"):
        dim = bound_argument(node, "dim", 0)  # the module built inline: nn.Sequential(..., nn.Softmax(dim=0))
    elif qualified:
        dim = bound_argument(node, "dim", 1)  # F.softmax(x, 0), torch.log_softmax(x, dim=0)
    elif isinstance(node.func, cst.Attribute) and node.func.attr.value in ("softmax", "log_softmax"):
        dim = bound_argument(node, "dim", 0)  # x.softmax(0)
    else:
        ctors = [i.ctor for i in analysis.instances(node.func, scope, 0)] if scope is not None else []
        dims = {getattr(bound_argument(c, "dim", 0), "value", None) for c in ctors if c is not None}
        return dims == {"0"}  # self.softmax(x) with self.softmax = nn.Softmax(dim=0)
    return isinstance(dim, cst.Integer) and dim.value == "0"
