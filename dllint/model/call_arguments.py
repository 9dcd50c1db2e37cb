"""Arguments of a call: the expression bound to a parameter, and a module with its device moves
stripped. Shared by the analysis and by rules."""

from __future__ import annotations

from typing import Optional

import libcst as cst


def bound_argument(call: cst.Call, name: str, index: int) -> Optional[cst.BaseExpression]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if 0 <= index < len(positional) and not any(a.star for a in call.args[:index + 1]):
        return positional[index].value
    return None


def strip_device_moves(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`model.to(device)` -> `model`: device and dtype moves return the same module."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and \
            expr.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half", "bfloat16"):
        expr = expr.func.value
    return expr
