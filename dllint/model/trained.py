"""What is trained: objects whose parameters an optimizer updates, and tensors trained directly
(`torch.zeros(1, requires_grad=True)`, `nn.Parameter(...)`)."""

from __future__ import annotations

from typing import Set

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.facts import Scope
from dllint.model.flow import Analysis


def is_trainable_leaf(analysis: Analysis, expr: cst.BaseExpression, scope: Scope, order: int) -> bool:
    """Is `expr` (a name or `self.x`) a tensor that requires grad by construction: a factory called with
    requires_grad=True, a `.requires_grad_()` result, or an nn.Parameter?"""
    if not isinstance(expr, (cst.Name, cst.Attribute)):
        return False
    for origin in analysis.origins(expr, scope, order):
        value = origin.expr
        if not isinstance(value, cst.Call) or origin.path:
            continue
        if isinstance(value.func, cst.Attribute) and value.func.attr.value == "requires_grad_" and \
                not (value.args and isinstance(value.args[0].value, cst.Name) and value.args[0].value.value == "False"):
            return True
        if analysis.torch_member(value.func, origin.scope, api.PARAMETER_CLASSES):
            return True
        if analysis.torch_member(value.func, origin.scope, api.TENSOR_FACTORIES) and any(
                arg.keyword is not None and arg.keyword.value == "requires_grad" and
                isinstance(arg.value, cst.Name) and arg.value.value == "True" for arg in value.args):
            return True
    return _handed_to_optimizer(analysis, expr, scope)


def _handed_to_optimizer(analysis: Analysis, expr: cst.BaseExpression, scope: Scope) -> bool:
    """A tensor listed itself among an optimizer's parameters (`Adam([self.log_alpha])`, after
    `self.log_alpha.requires_grad = True`) is trained directly. For `self.x`, every method of the class
    counts: the optimizer is usually built in `__init__`, the loss in another method."""
    name = dotted_name(expr)
    if not name:
        return False
    if isinstance(expr, cst.Attribute) and name.startswith("self.") and scope.cls is not None:
        scopes = list(scope.cls.methods.values())
    else:
        scopes, walk = [], scope
        while walk is not None:
            scopes.append(walk)
            walk = walk.parent
    for candidate in scopes:
        for call in candidate.calls:
            if analysis.torch_member(call.node.func, candidate, api.OPTIMIZER_CLASSES) is None:
                continue
            if name in _direct_tensors(call.node):
                return True
    return False


def _direct_tensors(call: cst.Call) -> Set[str]:
    """Names listed as tensors in an optimizer's parameter argument: `[w, self.b]`, `{"params": [w]}`."""
    found: Set[str] = set()
    # A bare name as the whole argument (`Adam(params)`) holds parameters, it is not one tensor.
    stack = [(arg.value, False) for arg in call.args if arg.keyword is None or arg.keyword.value == "params"][:1]
    while stack:
        node, listed = stack.pop()
        if isinstance(node, (cst.List, cst.Tuple)):
            stack.extend((element.value, True) for element in node.elements)
        elif isinstance(node, cst.Dict):
            stack.extend((element.value, False) for element in node.elements
                         if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)
                         and element.key.value[1:-1] == "params")
        elif listed and isinstance(node, (cst.Name, cst.Attribute)) and dotted_name(node):
            found.add(dotted_name(node))
    return found


def optimized_objects(analysis: Analysis, scope: Scope) -> Set[str]:
    """`D1` for `Adam(D1.parameters(), ...)` in this scope or an enclosing one: an object whose
    parameters an optimizer updates is a module, whatever its class."""
    return analysis.memo("optimized_objects", scope, lambda s: _optimized_objects(analysis, s))


def _optimized_objects(analysis: Analysis, scope: Scope) -> Set[str]:
    found: Set[str] = set()
    walk = scope
    while walk is not None:
        for call in walk.calls:
            if analysis.torch_member(call.node.func, walk, api.OPTIMIZER_CLASSES) is None:
                continue
            for node in _parameter_sources(call.node):
                found.add(node)
        walk = walk.parent
    return found


def _parameter_sources(call: cst.Call):
    stack = [arg.value for arg in call.args]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Call):
            if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("parameters", "named_parameters"):
                owner = dotted_name(node.func.value)
                if owner:
                    yield owner
            else:
                stack.extend(arg.value for arg in node.args)
                if isinstance(node.func, cst.Attribute):
                    stack.append(node.func.value)
        elif isinstance(node, (cst.List, cst.Tuple)):
            stack.extend(element.value for element in node.elements)
        elif isinstance(node, cst.BinaryOperation):
            stack.extend((node.left, node.right))
        elif isinstance(node, cst.Dict):
            stack.extend(element.value for element in node.elements if isinstance(element, cst.DictElement))
