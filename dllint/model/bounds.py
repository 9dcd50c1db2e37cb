"""Clamps and bounds: which calls bound a value by constants, what the value is, what the bounds are.

Recognises torch.clamp / torch.clip / Tensor.clamp(_), torch.min / max / minimum / maximum against a
constant tensor, and Python's min / max against a constant.
"""

from typing import Optional

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name

_CLAMP_FUNCTIONS = {"clamp", "clip", "clamp_min", "clamp_max"}
_BOUND_FUNCTIONS = {"min", "max", "minimum", "maximum", "fmin", "fmax"}
_CLAMP_METHODS = _CLAMP_FUNCTIONS | {"clamp_", "clip_", "clamp_min_", "clamp_max_"}
_CONSTANT_TENSORS = {"tensor", "zeros_like", "ones_like", "full_like", "as_tensor", "scalar_tensor"}


def two_bounds(analysis, call: cst.Call, scope):
    """(min, max) of clamp(x, a, b) / x.clamp(a, b) / keyword forms, when both are numbers."""
    method = isinstance(call.func, cst.Attribute) and not analysis.qualify(call.func, scope)
    args = list(call.args) if method else list(call.args[1:])
    positional = [a.value for a in args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in args if a.keyword is not None}
    low = keywords.get("min", positional[0] if positional else None)
    high = keywords.get("max", positional[1] if len(positional) > 1 else None)
    if low is None or high is None:
        return None
    values = (number_value(analysis, low, scope), number_value(analysis, high, scope))
    return values if None not in values else None


def lower_bound(analysis, call: cst.Call, scope) -> Optional[float]:
    """The constant of a lower-bound-only clamp (clamp(min=c), clamp_min(c), max(x, c)), else None."""
    method = isinstance(call.func, cst.Attribute) and not analysis.qualify(call.func, scope)
    name = call.func.attr.value if isinstance(call.func, cst.Attribute) else dotted_name(call.func)
    name = (name or "").rsplit(".", 1)[-1].rstrip("_")
    args = list(call.args) if method else list(call.args[1:])
    if any(a.keyword is not None and a.keyword.value == "max" for a in args):
        return None
    bounds = [a.value for a in args if a.keyword is None or a.keyword.value == "min"]
    if len(bounds) != 1 or (name in ("clamp", "clip") and any(a.keyword is None for a in args[1:])):
        return None
    if name not in ("clamp", "clip", "clamp_min", "max", "maximum"):
        return None
    return number_value(analysis, bounds[0], scope)


def number_value(analysis, expr, scope) -> Optional[float]:
    """The value of a numeric literal, or of an UPPER_CASE constant bound to one."""
    if isinstance(expr, cst.Name) and expr.value.isupper():
        values = [o.expr for o in analysis.origins(expr, scope, 10 ** 9)]
        expr = values[0] if len(values) == 1 else expr
    if isinstance(expr, cst.Call) and expr.args and analysis.torch_member(expr.func, scope, _CONSTANT_TENSORS):
        expr = expr.args[0].value
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Subtract, cst.Add)):
        left, right = number_value(analysis, expr.left, scope), number_value(analysis, expr.right, scope)
        if left is not None and right is not None:
            return left - right if isinstance(expr.operator, cst.Subtract) else left + right
        return None
    negative = isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus)
    if negative:
        expr = expr.expression
    if isinstance(expr, (cst.Integer, cst.Float)):
        value = float(expr.value.replace("_", ""))
        return -value if negative else value
    return None


def function_name(call: cst.Call, analysis, scope) -> Optional[str]:
    qualified = analysis.qualify(call.func, scope)
    if qualified and api.is_torch_name(qualified):
        return api.last_component(qualified)
    if isinstance(call.func, cst.Attribute) and not qualified:
        return call.func.attr.value
    if isinstance(call.func, cst.Name) and call.func.value in ("min", "max"):
        return call.func.value
    return None


def clamped_value(call: cst.Call, name: Optional[str], analysis, scope) -> Optional[cst.BaseExpression]:
    """The value being bounded, when `call` bounds something by a constant."""
    args = call.args
    method = isinstance(call.func, cst.Attribute) and not analysis.qualify(call.func, scope)
    if name in _CLAMP_METHODS and method:
        bounds = list(args)
        return call.func.value if bounds and all(_is_constant(a.value, analysis, scope) for a in bounds) else None
    if name in _CLAMP_FUNCTIONS and not method and args:
        bounds = args[1:]
        return args[0].value if bounds and all(_is_constant(a.value, analysis, scope) for a in bounds) else None
    if name in _BOUND_FUNCTIONS and len(args) == 2 and not any(a.keyword for a in args):
        first, second = args[0].value, args[1].value
        if isinstance(call.func, cst.Name):  # Python's builtin min/max
            if _is_constant(second, analysis, scope):
                return first
            if _is_constant(first, analysis, scope):
                return second
            return None
        if not method and _is_constant_tensor(second, analysis, scope):
            return first
    return None


def _is_number(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    return isinstance(expr, (cst.Integer, cst.Float))


def _is_constant(expr: cst.BaseExpression, analysis, scope) -> bool:
    if _is_number(expr) or (isinstance(expr, cst.Name) and (expr.value.isupper() or expr.value == "None")):
        return True
    if isinstance(expr, cst.Call) and dotted_name(expr.func) == "float":
        return True
    return isinstance(expr, cst.BinaryOperation) and _is_number(expr.left) and _is_number(expr.right)


def _is_constant_tensor(expr: cst.BaseExpression, analysis, scope) -> bool:
    if isinstance(expr, cst.Call):
        member = analysis.torch_member(expr.func, scope, _CONSTANT_TENSORS)
        if member in ("zeros_like", "ones_like", "full_like"):
            return True
        if member and expr.args:
            return _is_number(expr.args[0].value)
    return False
