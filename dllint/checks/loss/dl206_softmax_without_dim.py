"""DL206: softmax / log_softmax without an explicit dim."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import UNSAFE, Fix, with_keyword
from dllint.registry import rule

_FUNCTIONS = {"softmax", "log_softmax", "softmin"}
_MODULES = {"Softmax", "LogSoftmax", "Softmin"}


@rule("DL206")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for call in scope.calls:
            args = call.node.args
            if any(a.keyword is not None and a.keyword.value == "dim" for a in args) or any(a.star for a in args):
                continue
            positional = [a for a in args if a.keyword is None]
            function = analysis.torch_member(call.node.func, scope, _FUNCTIONS)
            if function and len(positional) < 2 and positional and \
                    _from_linear_layer(analysis, positional[0].value, scope, call.order):
                continue
            if function and len(positional) < 2:
                ctx.report(call.node, f"{function}() without dim uses a legacy implicit dimension (dim 0 for 1-D "
                                      f"and 3-D inputs), which normalises across the batch for some shapes; pass "
                                      f"dim explicitly, e.g. dim=-1.", fix=_add_dim(call.node))
            module = analysis.torch_member(call.node.func, scope, _MODULES)
            if module and not positional and _follows_linear_layer(analysis, call.node, scope):
                continue
            if module and not positional:
                ctx.report(call.node, f"nn.{module}() without dim uses a legacy implicit dimension, which "
                                      f"normalises across the batch for some input shapes; pass dim explicitly, "
                                      f"e.g. nn.{module}(dim=-1).", fix=_add_dim(call.node))


def _add_dim(call):
    # Unsafe: -1 is right for (batch, classes) logits, not for every layout.
    return Fix(UNSAFE, "pass dim=-1", call, with_keyword(call, "dim", "-1"))


# A (batch, features) head: the implicit dim of a 2-D input is 1, the right one. Evidence that the input
# is 2-D: an nn.Linear applied to flattened features, or nn.Softmax() right after an nn.Linear in a
# Sequential (a classification head).
_FLATTENING = {"flatten", "view", "reshape"}


def _is_linear(analysis, expr, scope, order) -> bool:
    instances = analysis.instances(expr, scope, order)
    return bool(instances) and all(i.torch_name == "Linear" for i in instances)


def _from_linear_layer(analysis, value, scope, order) -> bool:
    """F.softmax(self.fc(x.flatten(1))): the output of an nn.Linear applied to flattened features."""
    origins = [o for o in analysis.origins(value, scope, order) if not o.path]
    return bool(origins) and all(isinstance(o.expr, cst.Call) and o.expr.args and
                                 _is_linear(analysis, o.expr.func, o.scope, o.order) and
                                 _is_flattened(analysis, o.expr.args[0].value, o.scope, o.order) for o in origins)


def _is_flattened(analysis, value, scope, order) -> bool:
    for origin in analysis.origins(value, scope, order):
        call = origin.expr
        if not isinstance(call, cst.Call) or origin.path:
            return False
        func = call.func
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        if not (method in _FLATTENING and analysis.qualify(func, origin.scope) is None or
                analysis.torch_member(func, origin.scope, {"flatten"})):
            return False
    return True


def _follows_linear_layer(analysis, softmax, scope) -> bool:
    """nn.Sequential(..., nn.Linear(h, classes), nn.Softmax())."""
    for call in scope.calls:
        if analysis.torch_member(call.node.func, scope, {"Sequential"}) is None:
            continue
        layers = [a.value for a in call.node.args]
        for before, layer in zip(layers, layers[1:]):
            if layer is softmax:
                return isinstance(before, cst.Call) and analysis.torch_member(before.func, scope, {"Linear"}) is not None
    return False
