"""DL206: softmax / log_softmax without an explicit dim."""

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
            if function and len(positional) < 2:
                ctx.report(call.node, f"{function}() without dim uses a legacy implicit dimension (dim 0 for 1-D "
                                      f"and 3-D inputs), which normalises across the batch for some shapes; pass "
                                      f"dim explicitly, e.g. dim=-1", fix=_add_dim(call.node))
            module = analysis.torch_member(call.node.func, scope, _MODULES)
            if module and not positional:
                ctx.report(call.node, f"nn.{module}() without dim uses a legacy implicit dimension, which "
                                      f"normalises across the batch for some input shapes; pass dim explicitly, "
                                      f"e.g. nn.{module}(dim=-1)", fix=_add_dim(call.node))


def _add_dim(call):
    # Unsafe: -1 is right for (batch, classes) logits, not for every layout.
    return Fix(UNSAFE, "pass dim=-1", call, with_keyword(call, "dim", "-1"))
