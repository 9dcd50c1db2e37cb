"""DL204: log(softmax(x)), log(sigmoid(x)) or a hand-written softmax: numerically unstable."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.registry import rule


@rule("DL204")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for call in scope.calls:
            argument = _log_argument(analysis, call)
            if argument is None:
                continue
            source = analysis.value_source(argument, scope, call.order)
            if source is not None and source.kind in api.STABLE_LOG_REPLACEMENTS:
                stable = api.STABLE_LOG_REPLACEMENTS[source.kind]
                ctx.report(call.node, f"The log of {ctx.describe_source(source)} underflows to -inf for small "
                                      f"probabilities; use {stable}, which computes the same value stably.")
        for division, order in scope.divisions:
            if _unstable_exp(analysis, division.left, scope, order) and \
                    _is_sum_of_exp(analysis, division.right, scope, order):
                ctx.report(division, "A hand-written softmax exp(x) / exp(x).sum() overflows for large logits; "
                                     "use torch.softmax(x, dim=...) (or log_softmax for a loss).")


def _log_argument(analysis, call):
    node = call.node
    if analysis.torch_member(node.func, call.scope, {"log"}) and node.args:
        return node.args[0].value
    if call.method == "log" and not node.args and analysis.qualify(node.func, call.scope) is None:
        return node.func.value
    return None


def _is_exp(analysis, expr, scope) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    if analysis.torch_member(expr.func, scope, {"exp"}):
        return True
    return isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "exp" and \
        analysis.qualify(expr.func, scope) is None


def _exp_calls(analysis, expr, scope, order):
    """The exp calls that produce `expr`, directly or through the names it was assigned to."""
    for origin in analysis.origins(expr, scope, order):
        if _is_exp(analysis, origin.expr, origin.scope):
            yield origin


def _unstable_exp(analysis, expr, scope, order) -> bool:
    """exp(x) of something not shifted by its maximum: exp(x - x.max()) cannot overflow."""
    for origin in _exp_calls(analysis, expr, scope, order):
        call = origin.expr
        argument = call.args[0].value if call.args else call.func.value
        if not _subtracts_max(analysis, argument, origin.scope, origin.order) and \
                not _is_negated(analysis, argument, origin.scope, origin.order):
            return True
    return False


def _is_negated(analysis, expr, scope, order) -> bool:
    """exp(-(d ** 2) / (2 * sigma ** 2)), exp(-k * t): a decay or Gaussian window, at most 1, cannot
    overflow."""
    origins = list(analysis.origins(expr, scope, order)) or []
    if not origins:
        return False
    for origin in origins:
        value = origin.expr
        while isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.Multiply, cst.Divide)):
            value = value.left
        if not (isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus)):
            return False
    return True


def _subtracts_max(analysis, expr, scope, order) -> bool:
    for origin in analysis.origins(expr, scope, order):
        value = origin.expr
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Subtract) and \
                any(_is_max(o.expr) for o in analysis.origins(value.right, origin.scope, origin.order)):
            return True
    return False


def _is_max(expr) -> bool:
    """x.max(...), torch.amax(x, ...), x.max(dim).values, x.max(dim)[0], logsumexp(x)."""
    if isinstance(expr, cst.Attribute) and expr.attr.value == "values":
        expr = expr.value
    elif isinstance(expr, cst.Subscript):
        expr = expr.value
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name in api.MAX_SHIFT_FUNCTIONS


def _is_sum_of_exp(analysis, expr, scope, order) -> bool:
    for origin in analysis.origins(expr, scope, order):
        value = origin.expr
        if not isinstance(value, cst.Call):
            continue
        if isinstance(value.func, cst.Attribute) and value.func.attr.value == "sum":
            summed = value.func.value
        elif api.torch_member(analysis.qualify(value.func, origin.scope), {"sum"}) and value.args:
            summed = value.args[0].value
        else:
            continue
        if any(True for _ in _exp_calls(analysis, summed, origin.scope, origin.order)):
            return True
    return False
