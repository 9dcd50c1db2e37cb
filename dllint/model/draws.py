"""Fresh random draws: a value that is torch.randn(...) and nothing else, followed through arithmetic,
methods of the draw, helpers and lambdas."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from dllint.model.facts import Scope
from dllint.model.flow import Analysis

RANDOM_FACTORIES = {"randn", "rand", "randint", "normal", "randn_like", "rand_like", "randint_like", "randperm"}
_MAX_DEPTH = 8


def drawn_at_random(analysis: Analysis, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                    depth: int = 0) -> bool:
    """Is `expr` a fresh random draw: torch.randn(...), scaled or shifted (`torch.rand(n, d) * 2 - 1`,
    `noise * temperature`), reshaped (`torch.randn(...).repeat(...)`), or returned by a helper that draws it?"""
    if depth > _MAX_DEPTH:
        return False
    origins = list(analysis.origins(expr, scope, order))
    for origin in origins:
        value = origin.expr
        if isinstance(value, cst.BinaryOperation):
            if not any(drawn_at_random(analysis, side, origin.scope, origin.order, depth + 1)
                       for side in (value.left, value.right)):
                return False
        elif isinstance(value, cst.Call) and analysis.torch_member(value.func, origin.scope, RANDOM_FACTORIES):
            continue
        elif isinstance(value, cst.Call) and _lambda_body(analysis, value.func, origin.scope, origin.order):
            if not drawn_at_random(analysis, _lambda_body(analysis, value.func, origin.scope, origin.order),
                                   origin.scope, origin.order, depth + 1):
                return False  # `noise = lambda: torch.randn(shape)` ... `noise()`
        elif isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                analysis.qualify(value.func, origin.scope) is None:
            if not drawn_at_random(analysis, value.func.value, origin.scope, origin.order, depth + 1):
                return False  # a method of the draw: `.repeat(...)`, `.to(device)`
        else:
            return False
    return bool(origins)


def _lambda_body(analysis: Analysis, func: cst.BaseExpression, scope: Scope, order: int):
    """The body of `make = lambda: ...` when `func` is a name bound to a lambda without parameters."""
    if not isinstance(func, cst.Name):
        return None
    for _, definition in analysis.reaching(scope, func.value, order):
        value = definition.value
        if isinstance(value, cst.Lambda) and not value.params.params:
            return value.body
    return None
