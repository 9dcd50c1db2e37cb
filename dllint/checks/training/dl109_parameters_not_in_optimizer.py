"""DL109: a layer is added to or replaced on the model after the optimizer was built over its parameters."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.facts import ClassFacts
from dllint.model.flow import bound_argument, strip_device_moves
from dllint.model.loops import mutually_exclusive
from dllint.model.syntax import enclosing_statement
from dllint.registry import rule


@rule("DL109")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope, depth=0)
        ctors = [e for e in events if e.kind == "optimizer_ctor"]
        if not ctors:
            continue
        for call in scope.calls:
            if not _builds_layer_with_parameters(ctx, scope, call):
                continue
            target = _assigned_attribute(scope, call)
            if target is None:
                continue
            for ctor in ctors:
                model = _optimized_model(ctor.call.node)
                if model is None or ctor.site_order > call.order or not target.startswith(model + ".") or \
                        mutually_exclusive(ctor.call.conditions, call.conditions):
                    continue
                if any(e.kind == "optimizer_ctor" and e.site_order > call.order for e in events) or \
                        any(c.method == "add_param_group" and c.order > call.order for c in scope.calls):
                    break  # the optimizer is rebuilt, or the new layer is added to it
                ctx.report(call.node, f"{target} is replaced after the optimizer was built over {model}.parameters() "
                                      f"({ctx.location(ctor.node)}), so the new layer's parameters are not in the "
                                      f"optimizer and never train; build the optimizer after changing the model (or "
                                      f"add_param_group the new layer).")
                break


def _optimized_model(ctor: cst.Call):
    """`model` in SGD(model.parameters()), SGD(list(model.parameters())), SGD(filter(f, model.parameters()))."""
    params = bound_argument(ctor, "params", 0)
    while isinstance(params, cst.Call) and dotted_name(params.func) in ("list", "filter") and params.args:
        params = params.args[-1].value
    if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute) and \
            params.func.attr.value in ("parameters", "named_parameters"):
        return dotted_name(params.func.value)
    return None


def _builds_layer_with_parameters(ctx: CheckContext, scope, call) -> bool:
    qualified = ctx.analysis.qualify(call.node.func, scope) or ""
    if qualified.startswith("torch.nn.") and qualified.count(".") == 2:
        name = api.last_component(qualified)
        return name[:1].isupper() and name not in api.STATELESS_MODULES and name not in api.LOSS_CLASSES
    target = ctx.project.resolve_name(call.node.func, scope.file) \
        if isinstance(call.node.func, (cst.Name, cst.Attribute)) else None
    return isinstance(target, ClassFacts) and ctx.analysis.is_module_class(target)


def _assigned_attribute(scope, call):
    """`model.fc` for `model.fc = nn.Linear(...)` (or `.to(device)`), `model.classifier` for
    `model.classifier[6] = ...`."""
    statement = enclosing_statement(scope.node, call.node)
    if statement is None or len(statement.body) != 1 or not isinstance(statement.body[0], cst.Assign):
        return None
    assign = statement.body[0]
    if strip_device_moves(assign.value) is not call.node or len(assign.targets) != 1:
        return None
    target = assign.targets[0].target
    while isinstance(target, cst.Subscript):
        target = target.value
    return dotted_name(target) if isinstance(target, cst.Attribute) else None
