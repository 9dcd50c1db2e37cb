"""DL501: submodules or parameters kept in a plain list, dict or tuple are invisible to nn.Module."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import SAFE, Fix
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.layers import container_elements, is_dict_call
from dllint.model.project import alias_for
from dllint.registry import rule

_WRAPPERS = {cst.List: "nn.ModuleList", cst.Tuple: "nn.ModuleList", cst.Dict: "nn.ModuleDict",
             cst.ListComp: "nn.ModuleList", cst.DictComp: "nn.ModuleDict"}


@rule("DL501")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for cls, attribute, scope, definition in analysis.module_attributes(ctx.file):
        value = definition.value
        if is_dict_call(value) and not definition.unpack_path:
            kind = _element_kind(analysis, value, scope, definition.order)
            if kind is not None:
                wrapper = "nn.ParameterDict" if kind == "parameter" else "nn.ModuleDict"
                ctx.report(value, f"self.{attribute} holds {kind}s in a plain dict, so they are not registered: "
                                  f"not returned by parameters() (never trained), not moved by .to(device), not "
                                  f"saved in state_dict; build it as {wrapper}(...).")
            continue
        if type(value) not in _WRAPPERS or definition.unpack_path:
            continue
        if _rebound_to_container(analysis, cls, attribute, scope, definition):
            continue  # `self.blocks = []`, appended to, then `self.blocks = nn.Sequential(*self.blocks)`
        kind = _element_kind(analysis, value, scope, definition.order)
        if kind is None and _is_empty(value) and not _registers_elements(cls, attribute):
            kind = _appended_kind(analysis, cls, attribute)
        if kind is not None:
            wrapper = "nn.ParameterList" if kind == "parameter" else _WRAPPERS[type(value)]
            if kind == "parameter" and isinstance(value, (cst.Dict, cst.DictComp)):
                wrapper = "nn.ParameterDict"
            ctx.report(value, f"self.{attribute} holds {kind}s in a plain {type(value).__name__.lower()}, "
                              f"so they are not registered: not returned by parameters() (never trained), "
                              f"not moved by .to(device), not saved in state_dict; wrap it in {wrapper}.",
                       fix=_wrap(ctx, value, wrapper))


def _rebound_to_container(analysis, cls, attribute, scope, definition) -> bool:
    """Is the plain container replaced later in the same method by a registering container module?"""
    for later_scope, later in cls.attributes.get(attribute, []):
        if later_scope is scope and later.order > definition.order and later.value is not None and any(
                instance.torch_name in api.CONTAINER_MODULES
                for instance in analysis.instances(later.value, later_scope, later.order)):
            return True
    return False


def _is_empty(value) -> bool:
    return isinstance(value, (cst.List, cst.Dict)) and not value.elements


def _element_kind(analysis, value, scope, order):
    self_name = scope.self_name
    for element in container_elements(value):
        if isinstance(element, cst.Attribute) and isinstance(element.value, cst.Name) and \
                element.value.value == self_name:
            continue  # `self.layer2` is registered as an attribute already; the list only refers to it
        for instance in analysis.instances(element, scope, order):
            kind = _kind(analysis, instance)
            if kind:
                return kind
    return None


def _kind(analysis, instance):
    if instance.project_class is not None:
        return "submodule" if analysis.is_module_class(instance.project_class) else None
    if instance.torch_class and instance.torch_class.startswith("torch.nn"):
        if instance.torch_name in api.PARAMETER_CLASSES:
            return "parameter"
        if instance.torch_name and instance.torch_name[0].isupper() and instance.torch_name not in ("Module",):
            return "submodule"
    return None


def _appended_kind(analysis, cls, attribute):
    """`self.layers = []` followed by `self.layers.append(nn.Linear(...))`."""
    for scope in cls.methods.values():
        for call in scope.calls:
            if call.method in ("append", "extend", "insert") and call.receiver_text == f"{scope.self_name}.{attribute}":
                for arg in call.node.args[-1:]:
                    for instance in analysis.instances(arg.value, scope, call.order):
                        kind = _kind(analysis, instance)
                        if kind:
                            return kind
    return None


def _registers_elements(cls, attribute) -> bool:
    """The list is only an index of submodules registered one by one: `self.add_module(name, layer)`
    next to `self.layers.append(layer)`, or `self.add_module(name, self.layers[-1])`."""
    for scope in cls.methods.values():
        listed = f"{scope.self_name}.{attribute}"
        appended = {dotted_name(call.node.args[-1].value) for call in scope.calls
                    if call.method in ("append", "insert") and call.receiver_text == listed and call.node.args}
        appended.discard(None)
        for call in scope.calls:
            if len(call.node.args) < 2 or not _registers_on(call, scope.self_name):
                continue
            registered = call.node.args[-1].value
            if dotted_name(registered) in appended or \
                    isinstance(registered, cst.Subscript) and dotted_name(registered.value) == listed:
                return True
    return False


def _registers_on(call, self_name) -> bool:
    if call.method in api.TRAINABLE_REGISTERING_METHODS:
        return call.receiver_text == self_name
    return call.callee_text == "setattr" and dotted_name(call.node.args[0].value) == self_name


def _wrap(ctx, value, wrapper: str):
    spelled = alias_for(ctx.file, "torch.nn")
    if spelled is None:
        return None
    container = f"{spelled}.{wrapper.split('.', 1)[1]}"
    empty = isinstance(value, (cst.List, cst.Dict)) and not value.elements
    replacement = cst.parse_expression(f"{container}()") if empty else \
        cst.Call(func=cst.parse_expression(container), args=[cst.Arg(value=value)])
    return Fix(SAFE, f"wrap in {container}", value, replacement)
