"""DL206: softmax / log_softmax without an explicit dim, on an input whose rank makes the implicit dim wrong."""

from typing import Optional

from dllint.model import torch_api as api
from dllint.model.ranks import Shape, tensor_shape
from dllint.context import CheckContext
from dllint.fixes import UNSAFE, Fix, with_keyword
from dllint.model.project import instance_name
from dllint.registry import rule


@rule("DL206")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for call in scope.calls:
            args = call.node.args
            if any(a.keyword is not None and a.keyword.value == "dim" for a in args) or any(a.star for a in args):
                continue
            positional = [a for a in args if a.keyword is None]
            function = analysis.torch_member(call.node.func, scope, api.SOFTMAX_FUNCTIONS)
            if function and len(positional) == 1:
                shape = _wrong_implicit_dim(analysis, positional[0].value, scope, call.order)
                if shape:
                    ctx.report(call.node, f"{function}() without dim normalises over dim {_implicit(shape)} of this "
                                          f"{_describe(shape)}; pass dim explicitly (dim=-1 for the last axis).",
                               fix=_add_dim(call.node))
            module = analysis.torch_member(call.node.func, scope, api.SOFTMAX_MODULES)
            if module and not positional:
                shape = _module_input_wrong(ctx, scope, call)
                if shape:
                    ctx.report(call.node, f"nn.{module}() without dim normalises over dim {_implicit(shape)} of what "
                                          f"it is applied to, a {_describe(shape)}; pass dim explicitly "
                                          f"(nn.{module}(dim=-1) for the last axis).", fix=_add_dim(call.node))


def _add_dim(call):
    # Unsafe: -1 is right for (batch, ..., classes) logits, not for every layout.
    return Fix(UNSAFE, "pass dim=-1", call, with_keyword(call, "dim", "-1"))


# PyTorch's legacy rule picks dim 0 for 0-, 1- and 3-D inputs and dim 1 otherwise: right for a 1-D vector,
# a (batch, classes) matrix and a (batch, classes, H, W) map; wrong for a 3-D (batch, seq, classes) tensor
# (it normalises across the batch) and for 4-D attention scores (batch, heads, query, key), whose dim 1 is
# the heads. Only a rank known from how the tensor was made is evidence; an unknown rank is not reported.
def _implicit(shape: Shape) -> int:
    return 0 if shape[0] in (0, 1, 3) else 1


def _describe(shape: Shape) -> str:
    rank, product = shape
    if rank == 3:
        return "3-D tensor, whose dim 0 is the batch (or the sequence), not the classes"
    return f"{rank}-D matrix product (attention scores), whose dim 1 is the heads, not the keys"


def _is_wrong(shape: Optional[Shape]) -> bool:
    return shape is not None and (shape[0] == 3 or shape[0] >= 4 and shape[1])


def _wrong_implicit_dim(analysis, expr, scope, order) -> Optional[Shape]:
    shape = tensor_shape(analysis, expr, scope, order)
    return shape if _is_wrong(shape) else None


def _module_input_wrong(ctx: CheckContext, scope, ctor) -> Optional[Shape]:
    """The shape of what an `nn.Softmax()` stored on `self` (or in a local) is applied to, where that is wrong."""
    analysis = ctx.analysis
    attributes = [name for name, d in scope.self_definitions if d.value is ctor.node] if scope.cls is not None else []
    uses = []
    for attribute in attributes:
        for method in scope.cls.methods.values():
            uses += [(c, method) for c in method.calls if c.callee_text == f"{instance_name(method)}.{attribute}"]
    names = [name for name, ds in scope.definitions.items() if any(d.value is ctor.node for d in ds)]
    uses += [(c, scope) for c in scope.calls if c.callee_text in names]
    for use, use_scope in uses:
        if use.node.args and not use.node.args[0].star:
            shape = _wrong_implicit_dim(analysis, use.node.args[0].value, use_scope, use.order)
            if shape:
                return shape
    return None
