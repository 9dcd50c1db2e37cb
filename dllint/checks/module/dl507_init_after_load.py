"""DL507: weights are re-initialized after they were loaded, overwriting the checkpoint."""


import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.facts import Scope
from dllint.model.flow import strip_device_moves
from dllint.model.loops import mutually_exclusive
from dllint.registry import rule


@rule("DL507")
def check(ctx: CheckContext) -> None:
    for scope in ctx.file.scopes_mentioning(("load_state_dict", "from_pretrained", "load")):
        loads = [(call, loaded) for call in scope.calls for loaded in [_loaded_object(ctx, scope, call)] if loaded]
        if not loads:
            continue
        for call in scope.calls:
            target = _reinitialized_object(ctx, scope, call)
            if target is None:
                continue
            for load, loaded in loads:
                if load.order >= call.order or mutually_exclusive(load.conditions, call.conditions):
                    continue
                if not (loaded == target or loaded.startswith(target + ".")):
                    continue  # re-initializing a part the checkpoint may not provide (a new head)
                root = target.split(".")[0]
                if any(load.order < d.order < call.order and not _holds(d, load.node)
                       for d in scope.definitions.get(root, [])):
                    continue  # a new object under the same name
                ctx.report(call.node, f"This re-initializes {target} after its weights were loaded at "
                                      f"{ctx.location(load.node)}, overwriting them; initialize before loading, or "
                                      f"re-initialize only the layers the checkpoint does not provide.")
                break


def _loaded_object(ctx: CheckContext, scope: Scope, call) -> str:
    """`model` for model.load_state_dict(...), model = Net.from_pretrained(...), load_checkpoint(model, ...)."""
    if call.method == "load_state_dict" and call.receiver_text:
        if ctx.analysis.object_role(call.node.func.value, scope, call.order) is None:
            return call.receiver_text
        return ""
    if call.method == "from_pretrained":
        for name, definitions in scope.definitions.items():
            if any(_holds(d, call.node) for d in definitions):
                return name
        return ""
    name = (call.callee_text or "").rsplit(".", 1)[-1]
    if api.LOAD_HELPER_NAME.search(name) and call.node.args and call.node.args[0].keyword is None:
        loaded = dotted_name(call.node.args[0].value)
        if loaded and ctx.analysis.is_model_expr(call.node.args[0].value, scope, call.order):
            return loaded
    return ""


def _reinitialized_object(ctx: CheckContext, scope: Scope, call):
    """`model` for model.apply(init_fn), model.reset_parameters(), nn.init.*_(p) over model.parameters()."""
    if call.method in api.INIT_METHODS and call.receiver_text:
        return call.receiver_text
    if call.method == "apply" and call.receiver_text and len(call.node.args) == 1 and \
            _is_init_function(ctx, scope, call, call.node.args[0].value):
        return call.receiver_text
    qualified = ctx.analysis.qualify(call.node.func, scope) or ""
    if qualified.startswith("torch.nn.init.") and call.loops:
        iterated = ctx.analysis.loop_iterable(call.loops[-1])
        if isinstance(iterated, cst.Call) and isinstance(iterated.func, cst.Attribute) and \
                iterated.func.attr.value in api.WEIGHT_ITERATORS:
            return dotted_name(iterated.func.value)
    return None


def _is_init_function(ctx: CheckContext, scope: Scope, call, function) -> bool:
    name = (dotted_name(function) or "").rsplit(".", 1)[-1].lower()
    if "init" in name:
        return True
    site = ctx.analysis.call_site(call.node, scope)
    target = ctx.project.resolve_name(function, scope.file) if isinstance(function, (cst.Name, cst.Attribute)) \
        else None
    if site is None or not isinstance(target, Scope):
        return False
    return any((ctx.analysis.qualify(inner.node.func, target) or "").startswith("torch.nn.init.") or
               inner.method in api.INIT_METHODS for inner in target.calls)


def _holds(definition, call: cst.Call) -> bool:
    """`name = call` or `name = call.to(device)`."""
    return definition.value is not None and strip_device_moves(definition.value) is call
