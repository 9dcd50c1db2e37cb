"""DL508: view/reshape lists a tensor's own sizes in another order, scrambling it where a permute was meant."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.registry import rule


@rule("DL508")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.file.scopes_mentioning(api.RESHAPE_METHODS):
        for call in scope.calls:
            if call.method not in api.RESHAPE_METHODS or not isinstance(call.node.func, cst.Attribute):
                continue
            tensor = call.receiver_text
            if tensor is None or len(call.node.args) < 2 or any(a.keyword or a.star for a in call.node.args):
                continue
            positions = [_dimension_of(analysis, scope, call, arg.value, tensor) for arg in call.node.args]
            known = [p for p in positions if p is not None]
            if len(known) < 2 or len(set(known)) != len(known) or known == sorted(known):
                continue
            order = ", ".join(str(p) for p in known)
            ctx.report(call.node, f"{tensor}.{call.method}() lists {tensor}'s own sizes in another order (dims "
                                  f"{order}), which reinterprets the memory instead of moving the axes and scrambles "
                                  f"the data; use {tensor}.permute(...) (then .reshape if sizes are merged).")


def _dimension_of(analysis, scope, call, expr, tensor: str):
    """Which dimension of `tensor` an argument is: `x.size(2)`, `x.shape[2]`, or a name unpacked from
    `x.shape` / `x.size()` while `tensor` still held the same value; a product of sizes (`h * w`, merged
    dimensions) counts as its first."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply):
        sides = [_dimension_of(analysis, scope, call, side, tensor) for side in (expr.left, expr.right)]
        return None if None in sides else min(sides)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "size" and \
            dotted_name(expr.func.value) == tensor and len(expr.args) == 1:
        return _integer(expr.args[0].value)
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute) and \
            expr.value.attr.value == "shape" and dotted_name(expr.value.value) == tensor and len(expr.slice) == 1:
        index = expr.slice[0].slice
        return _integer(index.value) if isinstance(index, cst.Index) else None
    if not isinstance(expr, cst.Name):
        return None
    reaching = analysis.reaching(scope, expr.value, call.order)
    if len(reaching) != 1:
        return None
    _, definition = reaching[0]
    value = definition.value
    if definition.kind != "assign" or len(definition.unpack_path) != 1 or value is None:
        return None
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value == "size" \
            and not value.args:
        value = value.func
    if not (isinstance(value, cst.Attribute) and value.attr.value in ("shape", "size") and
            dotted_name(value.value) == tensor):
        return None
    root = tensor.split(".")[0]
    if any(definition.order < d.order < call.order for d in scope.definitions.get(root, [])):
        return None  # the tensor was reassigned (permuted, say) after its sizes were read
    return definition.unpack_path[0]


def _integer(expr):
    if isinstance(expr, cst.Integer):
        return int(expr.value)
    return None
