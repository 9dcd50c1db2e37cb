"""The rank of a tensor, from how it was made (layers, tensor methods, matrix products); None where that
is not at hand, never a guess."""

from __future__ import annotations

from typing import Optional, Tuple

import libcst as cst

from dllint.model.facts import Scope
from dllint.model.flow import Analysis, Origin

# (rank, made by a matrix product of tensors of rank >= 2: attention scores)
Shape = Tuple[int, bool]

_KEEP_RANK = {"transpose", "permute", "contiguous", "float", "half", "double", "to", "cuda", "cpu", "clone",
              "detach", "masked_fill", "masked_fill_", "type_as", "relu", "tanh", "sigmoid", "exp"}
_REDUCE = {"sum", "mean", "amax", "amin", "logsumexp", "norm"}
_ELEMENTWISE_LAYERS = {"Linear", "Dropout", "LayerNorm", "ReLU", "GELU", "Tanh", "Identity"}
_CONV_RANKS = {"Conv1d": 3, "ConvTranspose1d": 3, "Conv2d": 4, "ConvTranspose2d": 4, "Conv3d": 5,
               "ConvTranspose3d": 5}
_MAX_DEPTH = 8


def tensor_shape(analysis: Analysis, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                 depth: int = 0) -> Optional[Shape]:
    """(rank, made by a matrix product) of a tensor when every value reaching `expr` agrees on it."""
    if depth > _MAX_DEPTH:
        return None
    shapes = set()
    for origin in analysis.origins(expr, scope, order):
        shape = _origin_shape(analysis, origin, depth)
        if shape is None:
            return None
        shapes.add(shape)
    return shapes.pop() if len(shapes) == 1 else None


def _origin_shape(analysis: Analysis, origin: Origin, depth: int) -> Optional[Shape]:
    value, scope, order = origin.expr, origin.scope, origin.order
    if isinstance(value, (cst.Integer, cst.Float)):
        return (0, False)
    if isinstance(value, cst.BinaryOperation):
        left = tensor_shape(analysis, value.left, scope, order, depth + 1)
        right = tensor_shape(analysis, value.right, scope, order, depth + 1)
        if isinstance(value.operator, cst.Divide) and left is not None and right is None:
            return left  # scores / self.scale: a divisor broadcasts into the numerator
        if left is None or right is None:
            return None
        product = isinstance(value.operator, cst.MatrixMultiply) and left[0] >= 2 and right[0] >= 2
        return (max(left[0], right[0]), product or left[1] or right[1])
    if not isinstance(value, cst.Call) or any(a.star for a in value.args):
        return None
    func, args = value.func, value.args
    positional = [a.value for a in args if a.keyword is None]
    qualified = analysis.qualify(func, scope)
    if qualified and qualified.startswith("math."):
        return (0, False)
    if qualified in ("torch.bmm", "torch.baddbmm"):
        return (3, True) if not origin.path else None
    if qualified == "torch.matmul" and len(positional) == 2:
        left = tensor_shape(analysis, positional[0], scope, order, depth + 1)
        right = tensor_shape(analysis, positional[1], scope, order, depth + 1)
        return (max(left[0], right[0]), True) if left and right and left[0] >= 2 and right[0] >= 2 else None
    layers = {instance.torch_name for instance in analysis.instances(func, scope, order)}
    if layers:
        layer = layers.pop()
        return _layer_shape(analysis, layer, positional, origin.path, scope, order, depth) if not layers else None
    if isinstance(func, cst.Attribute) and qualified is None and not origin.path:
        return _method_shape(analysis, func, positional, args, scope, order, depth)
    return None


def _method_shape(analysis: Analysis, func: cst.Attribute, positional, args, scope: Scope, order: int,
                  depth: int) -> Optional[Shape]:
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
    base = tensor_shape(analysis, func.value, scope, order, depth + 1)
    if base is None:
        return None
    if method in _KEEP_RANK:
        return base
    if method in ("squeeze", "unsqueeze") and len(positional) == 1:
        return (base[0] + (1 if method == "unsqueeze" else -1), base[1])
    keywords = {a.keyword.value for a in args if a.keyword is not None}
    if method in _REDUCE and (positional or "dim" in keywords) and "keepdim" not in keywords:
        return (base[0] - 1, base[1])
    return None


def _layer_shape(analysis: Analysis, layer: Optional[str], positional, path, scope: Scope, order: int,
                 depth: int) -> Optional[Shape]:
    """The output rank of a torch layer called on `positional[0]`."""
    if layer in ("LSTM", "GRU", "RNN"):
        return (3, False) if path == (0,) else None  # output, (h, c): the output is (batch, seq, hidden)
    if path or not positional:
        return None
    if layer in _CONV_RANKS:
        return (_CONV_RANKS[layer], False)
    if layer == "Flatten":
        return (2, False)
    if layer in _ELEMENTWISE_LAYERS:
        return tensor_shape(analysis, positional[0], scope, order, depth + 1)
    if layer == "Embedding":
        inner = tensor_shape(analysis, positional[0], scope, order, depth + 1)
        return (inner[0] + 1, False) if inner else None
    return None
