"""Small syntax queries used to build fixes: where a node sits among the statements."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from dllint.model.builder import _child_fields


def enclosing_statement(root: cst.CSTNode, node: cst.CSTNode) -> Optional[cst.SimpleStatementLine]:
    """The simple statement line (inside `root`) that contains `node`."""
    stack = [root]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.SimpleStatementLine):
            if _contains(current, node):
                return current
            continue
        if isinstance(current, (cst.BaseExpression, cst.BaseSmallStatement)):
            continue
        stack.extend(_children(current))
    return None


def _contains(root: cst.CSTNode, node: cst.CSTNode) -> bool:
    stack = [root]
    while stack:
        current = stack.pop()
        if current is node:
            return True
        stack.extend(_children(current))
    return False


def _children(node: cst.CSTNode):
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            yield from (v for v in value if isinstance(v, cst.CSTNode))
