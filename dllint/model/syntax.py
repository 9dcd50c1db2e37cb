"""Small syntax queries used to build fixes: where a node sits among the statements."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from dllint.model.builder import _child_fields, dotted_name


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


# Calls whose result is only a number or text: a float in place of a tensor changes nothing there.
_NUMBER_SINKS = {"print", "str", "float", "int", "round", "format", "len", "abs", "math.isfinite", "math.isnan",
                 "math.exp", "append", "info", "debug", "warning", "log", "write", "set_postfix", "set_description",
                 "add_scalar", "update"}


def used_only_as_number(root: cst.CSTNode, name: str, depth: int = 2) -> bool:
    """Is every read of the variable `name` inside `root` one where a float would do as well as a
    0-d tensor: arithmetic, comparisons, f-strings, print()/logging calls? A method call on it
    (`total.item()`), a return, or any other call that receives it is not."""
    return all(_number_context(node, ancestors, root, depth) for node, ancestors in _name_reads(root, name))


def _name_reads(root: cst.CSTNode, name: str):
    stack = [(root, ())]
    while stack:
        node, ancestors = stack.pop()
        if isinstance(node, cst.Name) and node.value == name:
            yield node, ancestors
            continue
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not root:
            continue
        chain = ancestors + (node,)
        stack.extend((child, chain) for child in _children(node))


def _number_context(child, ancestors, root, depth) -> bool:
    for parent in reversed(ancestors):
        if isinstance(parent, (cst.AssignTarget, cst.For)) and getattr(parent, "target", None) is child:
            return True  # rebinding the name, not reading it
        if isinstance(parent, cst.AugAssign):
            return True
        if isinstance(parent, cst.Attribute) and parent.value is child:
            return False  # total.item(), total.detach(), total.backward()
        if isinstance(parent, (cst.FormattedString, cst.Comparison, cst.If, cst.While)):
            return True
        if isinstance(parent, cst.Call):
            func = parent.func
            called = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
            return child is not func and (called in _NUMBER_SINKS or dotted_name(func) in _NUMBER_SINKS)
        if isinstance(parent, cst.Assign):
            if depth <= 0:
                return False
            targets = [t.target for t in parent.targets]
            return all(isinstance(t, cst.Name) and used_only_as_number(root, t.value, depth - 1)
                       for t in targets)
        if isinstance(parent, (cst.Return, cst.Yield, cst.BaseStatement, cst.BaseSmallStatement)):
            return False
        child = parent
    return False
