"""DL206: softmax / log_softmax without an explicit dim, on an input whose rank makes the implicit dim wrong."""

from typing import Optional, Tuple

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import UNSAFE, Fix, with_keyword
from dllint.model.project import instance_name
from dllint.registry import rule

_FUNCTIONS = {"softmax", "log_softmax", "softmin"}
_MODULES = {"Softmax", "LogSoftmax", "Softmin"}


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
            function = analysis.torch_member(call.node.func, scope, _FUNCTIONS)
            if function and len(positional) == 1:
                shape = _wrong_implicit_dim(analysis, positional[0].value, scope, call.order)
                if shape:
                    ctx.report(call.node, f"{function}() without dim normalises over dim {_implicit(shape)} of this "
                                          f"{_describe(shape)}; pass dim explicitly (dim=-1 for the last axis).",
                               fix=_add_dim(call.node))
            module = analysis.torch_member(call.node.func, scope, _MODULES)
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
Shape = Tuple[int, bool]  # (rank, made by a matrix product: attention scores)


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
    shape = _shape(analysis, expr, scope, order)
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


_KEEP_RANK = {"transpose", "permute", "contiguous", "float", "half", "double", "to", "cuda", "cpu", "clone",
              "detach", "masked_fill", "masked_fill_", "type_as", "relu", "tanh", "sigmoid", "exp"}
_REDUCE = {"sum", "mean", "amax", "amin", "logsumexp", "norm"}


def _shape(analysis, expr, scope, order, depth=0) -> Optional[Shape]:
    """(rank, made by a matrix product) of a tensor when every value reaching `expr` agrees on it."""
    if depth > 8:
        return None
    shapes = set()
    for origin in analysis.origins(expr, scope, order):
        shape = _origin_shape(analysis, origin, depth)
        if shape is None:
            return None
        shapes.add(shape)
    return shapes.pop() if len(shapes) == 1 else None


def _origin_shape(analysis, origin, depth) -> Optional[Shape]:
    value, scope, order = origin.expr, origin.scope, origin.order
    if isinstance(value, (cst.Integer, cst.Float)):
        return (0, False)
    if isinstance(value, cst.BinaryOperation):
        left = _shape(analysis, value.left, scope, order, depth + 1)
        right = _shape(analysis, value.right, scope, order, depth + 1)
        if isinstance(value.operator, cst.Divide) and left is not None and right is None:
            return left  # scores / self.scale: a divisor broadcasts into the numerator
        if left is None or right is None:
            return None
        product = isinstance(value.operator, cst.MatrixMultiply) and left[0] >= 2 and right[0] >= 2
        return (max(left[0], right[0]), product or left[1] or right[1])
    if not isinstance(value, cst.Call):
        return None
    func, args = value.func, value.args
    if any(a.star for a in args):
        return None
    positional = [a.value for a in args if a.keyword is None]
    qualified = analysis.qualify(func, scope)
    if qualified and qualified.startswith("math."):
        return (0, False)
    if qualified in ("torch.bmm", "torch.baddbmm"):
        return (3, True) if not origin.path else None
    if qualified == "torch.matmul" and len(positional) == 2:
        left = _shape(analysis, positional[0], scope, order, depth + 1)
        right = _shape(analysis, positional[1], scope, order, depth + 1)
        return (max(left[0], right[0]), True) if left and right and left[0] >= 2 and right[0] >= 2 else None
    layers = {instance.torch_name for instance in analysis.instances(func, scope, order)}
    if layers:
        layer = layers.pop()
        return _layer_shape(analysis, layer, positional, origin.path, scope, order, depth) if not layers else None
    if isinstance(func, cst.Attribute) and qualified is None and not origin.path:
        return _method_shape(analysis, func, positional, args, scope, order, depth)
    return None


def _method_shape(analysis, func, positional, args, scope, order, depth) -> Optional[Shape]:
    """Tensor methods: x.view(b, t, -1), x.flatten(1), x.squeeze(-1), x.transpose(1, 2), x.sum(dim=1)."""
    method = func.attr.value
    if method in ("view", "reshape") and positional:
        if len(positional) == 1 and isinstance(positional[0], (cst.Tuple, cst.List)):
            return (len(positional[0].elements), False)
        return (len(positional), False) if all(not isinstance(p, (cst.Tuple, cst.List)) for p in positional) else None
    if method == "flatten" and len(args) <= 1:
        start = positional[0] if positional else None
        if start is None:
            return (1, False)
        return (int(start.value) + 1, False) if isinstance(start, cst.Integer) else None
    base = _shape(analysis, func.value, scope, order, depth + 1)
    if base is None:
        return None
    if method in _KEEP_RANK:
        return base
    if method == "squeeze" and len(positional) == 1:
        return (base[0] - 1, base[1])
    if method == "unsqueeze" and len(positional) == 1:
        return (base[0] + 1, base[1])
    keepdim = any(a.keyword is not None and a.keyword.value == "keepdim" for a in args)
    if method in _REDUCE and (positional or any(a.keyword is not None and a.keyword.value == "dim" for a in args)) \
            and not keepdim:
        return (base[0] - 1, base[1])
    return None


def _layer_shape(analysis, layer, positional, path, scope, order, depth) -> Optional[Shape]:
    """The output rank of a torch layer called on `positional[0]`."""
    if layer in ("LSTM", "GRU", "RNN"):
        return (3, False) if path[:1] == (0,) and len(path) == 1 else None
    if path or not positional:
        return None
    if layer in ("Conv1d", "ConvTranspose1d"):
        return (3, False)
    if layer in ("Conv2d", "ConvTranspose2d"):
        return (4, False)
    if layer in ("Conv3d", "ConvTranspose3d"):
        return (5, False)
    if layer == "Flatten":
        return (2, False)
    if layer in ("Linear", "Dropout", "LayerNorm", "ReLU", "GELU", "Tanh", "Identity"):
        return _shape(analysis, positional[0], scope, order, depth + 1)
    if layer == "Embedding":
        inner = _shape(analysis, positional[0], scope, order, depth + 1)
        return (inner[0] + 1, False) if inner else None
    return None
