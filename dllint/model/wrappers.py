"""What calling `module.forward(x)` instead of `module(x)` would skip: hooks registered on that module,
and the distributed / compiled wrapper whose inner module it is."""

from __future__ import annotations

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.facts import Scope
from dllint.model.flow import Analysis
from dllint.model.project import calls_spelled

HOOK_METHODS = ["register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
                "register_backward_hook", "register_full_backward_pre_hook"]
WRAPPERS = ["DistributedDataParallel", "DDP", "DataParallel", "FullyShardedDataParallel", "FSDP", "compile"]


def bypassed_by_forward(analysis: Analysis, receiver: cst.BaseExpression, scope: Scope, order: int) -> str:
    """What `receiver.forward(...)` skips, in words ("" when nothing is known to be skipped): the
    wrapper of an inner module (`model.module`, or a model wrapped by DDP/FSDP/compile), or hooks
    registered on that module (on the same object, also where a caller passes it in, or on `self` in
    its class)."""
    text = dotted_name(receiver)
    if text is None:
        return ""
    if text.endswith(".module"):
        return "the wrapper around it (DDP's gradient synchronization, DataParallel's scatter)"
    facts = scope.file
    objects = None

    def same_object(expr: cst.BaseExpression, where: Scope, at: int) -> bool:
        nonlocal objects
        if dotted_name(expr) == text and _same_name_same_object(where, scope, text):
            return True
        if objects is None:
            objects = {id(o.expr) for o in analysis.origins(receiver, scope, order) if not o.path}
        return bool(objects) and any(id(o.expr) in objects for o in analysis.origins(expr, where, at) if not o.path)

    for call in calls_spelled(facts, WRAPPERS):
        wrapper = api.last_component(dotted_name(call.node.func) or "")
        if wrapper in WRAPPERS and call.node.args and same_object(call.node.args[0].value, call.scope, call.order):
            return f"the {wrapper} wrapper built around it"
    hooked_classes = set()
    for call in calls_spelled(facts, HOOK_METHODS):
        if not isinstance(call.node.func, cst.Attribute):
            continue
        if call.scope.cls is not None and call.receiver_text == call.scope.self_name:
            hooked_classes.add(id(call.scope.cls))
        elif same_object(call.node.func.value, call.scope, call.order):
            return "the hooks registered on it"
    if hooked_classes and any(id(i.project_class) in hooked_classes
                              for i in analysis.instances(receiver, scope, order) if i.project_class is not None):
        return "the hooks its class registers on itself"
    return ""


def _same_name_same_object(where: Scope, scope: Scope, text: str) -> bool:
    """Does `text` name the same object in both scopes: the same function, or `self.<attribute>` in
    two methods of one class?"""
    if where is scope:
        return True
    self_name = scope.self_name
    return scope.cls is not None and where.cls is scope.cls and self_name is not None and \
        where.self_name == self_name and text.startswith(self_name + ".")
