"""What a call passes and where its result goes: keywords spread from `**options` dicts, and the names
callers give to what a helper returns."""

from __future__ import annotations

from typing import List, Optional, Set, Tuple

import libcst as cst

from dllint.model.builder import dotted_name
from dllint.model.facts import CallSite, Scope


def spread_keywords(analysis, call: cst.Call, scope: Scope, order: int) -> Optional[Set[str]]:
    """The keyword names the `**options` arguments of a call may pass, when every option dict is a
    literal (`{"num_workers": 1}` or `dict(num_workers=1)`, on every path) never changed after it is
    built; None when some key cannot be known."""
    keys: Set[str] = set()
    for arg in call.args:
        if arg.star != "**":
            continue
        if not isinstance(arg.value, cst.Name) or _changed_after_built(scope, arg.value.value):
            return None
        origins = list(analysis.origins(arg.value, scope, order))
        if not origins:
            return None
        for origin in origins:
            literal = None if origin.path else literal_keys(origin.expr)
            if literal is None:
                return None
            keys |= literal
    return keys


def literal_keys(expr: cst.BaseExpression) -> Optional[Set[str]]:
    """The keys of `{"a": 1, "b": 2}` or `dict(a=1, b=2)`; None when some key is not a literal."""
    if isinstance(expr, cst.Dict):
        keys = set()
        for element in expr.elements:
            if not isinstance(element, cst.DictElement) or not isinstance(element.key, cst.SimpleString):
                return None
            keys.add(element.key.evaluated_value)
        return keys
    if isinstance(expr, cst.Call) and dotted_name(expr.func) == "dict" and \
            all(arg.keyword is not None for arg in expr.args):
        return {arg.keyword.value for arg in expr.args}
    return None


def _changed_after_built(scope: Scope, name: str) -> bool:
    """`options.update(...)`, `options["shuffle"] = True`: keys added after the literal."""
    if any(call.receiver_text == name and call.method in ("update", "setdefault") for call in scope.calls):
        return True
    finder = _ItemAssignment(name)
    scope.node.visit(finder)
    return finder.found


class _ItemAssignment(cst.CSTVisitor):
    def __init__(self, name: str) -> None:
        self.name = name
        self.found = False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        target = node.target
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and target.value.value == self.name:
            self.found = True


def may_be_none(analysis, expr: cst.BaseExpression, scope: Scope, order: int) -> bool:
    """Is `expr` None on some path: `DistributedSampler(ds) if distributed else None`, or a name set to
    None on one branch?"""
    return any(isinstance(o.expr, cst.Name) and o.expr.value == "None" and not o.path
               for o in analysis.origins(expr, scope, order))


def returned_by(scope: Scope, node: cst.CSTNode) -> bool:
    """Does the function return the value `node` builds (directly, or through the names bound to it)?"""
    names = {name for name, definitions in scope.definitions.items() if any(d.value is node for d in definitions)}
    for _, value in scope.returns:
        if value is node or (isinstance(value, cst.Name) and value.value in names):
            return True
        if isinstance(value, cst.Name):
            # `loader = DataLoader(...)`, `loader = accelerator.prepare(loader)`, `return loader`
            for definition in scope.definitions.get(value.value, []):
                if isinstance(definition.value, cst.Call) and any(
                        isinstance(a.value, cst.Name) and a.value.value in names for a in definition.value.args):
                    return True
    return False


def result_bindings(analysis, scope: Scope, limit: int = 8) -> List[Tuple[CallSite, List[str]]]:
    """The calls of a function with the names each binds its result to (`train_loader = make_loader(...)`)."""
    found = []
    for caller in analysis.project.callers(scope)[:limit]:
        names = [name for name, definitions in caller.scope.definitions.items()
                 if any(d.value is caller.node and not d.unpack_path for d in definitions)]
        found.append((caller, names))
    return found
