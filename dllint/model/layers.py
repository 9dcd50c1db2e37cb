"""How module classes hold their layers: container literals, registering containers, attributes bound
to the same object, and constructor parameters a class keeps as its own layer."""

from __future__ import annotations

from typing import List, Optional, Set

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.facts import ClassFacts, Scope

_REGISTERING_CONTAINERS = {"Sequential", "ModuleList"}


def container_elements(value: Optional[cst.BaseExpression], depth: int = 0) -> List[cst.BaseExpression]:
    """The values a container literal holds (`[a, b]`, `{"k": a}`, `[a for ...]`, `dict(k=a)`); a nested
    list or comprehension (`[[conv, conv] for ...]`) holds its own elements."""
    if isinstance(value, (cst.List, cst.Tuple)):
        found = [e.value for e in value.elements]
    elif isinstance(value, cst.Dict):
        found = [e.value for e in value.elements if isinstance(e, cst.DictElement)]
    elif isinstance(value, cst.ListComp):
        found = [value.elt]
    elif isinstance(value, cst.DictComp):
        found = [value.value]
    elif is_dict_call(value):
        found = [arg.value for arg in value.args]  # type: ignore[union-attr]
    else:
        return []
    if depth < 2:
        found = [inner for element in found
                 for inner in (container_elements(element, depth + 1)
                               if isinstance(element, (cst.List, cst.Tuple, cst.ListComp)) else [element])]
    return found


def is_dict_call(value: Optional[cst.BaseExpression]) -> bool:
    """`dict(cls=nn.Linear(...), box=nn.Linear(...))`."""
    return isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "dict" and \
        bool(value.args) and all(arg.keyword is not None for arg in value.args)


def registering_container_arguments(analysis, scope: Scope) -> Set[int]:
    """ids of the arguments of nn.ModuleList(...) / nn.Sequential(*...) calls: whatever they hold is a module."""
    found: Set[int] = set()
    for call in scope.calls:
        if analysis.torch_member(call.node.func, scope, _REGISTERING_CONTAINERS):
            found.update(id(arg.value) for arg in call.node.args)
    return found


def may_hold_state(instances) -> bool:
    """Not known to be a stateless module (an activation, pooling, dropout or loss): a class of another
    library, or one chosen at run time, may hold weights."""
    return not any(i.torch_class and api.is_torch_name(i.torch_class) and
                   (i.torch_name in api.STATELESS_MODULES or i.torch_name in api.LOSS_CLASSES) for i in instances)


def same_object_attributes(cls: ClassFacts, attribute: str, self_name: Optional[str]) -> Set[str]:
    """Other attributes bound to the one object `self.<attribute>` holds: `self.b = self.a`, or one value
    assigned to both (`self.a = self.b = nn.Linear(...)`). Each is assigned once."""
    definitions = cls.definitions_of(attribute)
    if len(definitions) != 1:
        return set()
    value = definitions[0][1].value
    if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name) and value.value.value == self_name:
        return {value.attr.value} if len(cls.definitions_of(value.attr.value)) == 1 else set()
    if isinstance(value, cst.Call):
        return {name for name, found in cls.attributes.items()
                if name != attribute and len(found) == 1 and found[0][1].value is value}
    return set()


def kept_as_attribute(init: Scope, call: cst.Call, argument: cst.Arg) -> Optional[str]:
    """The attribute a constructor stores an argument under, unchanged (`self.norm = norm`)."""
    if argument.keyword is not None:
        param: Optional[str] = argument.keyword.value
    else:
        params = init.params[1:] if init.self_name is not None else init.params
        positional = [a for a in call.args if a.keyword is None]
        index = next(i for i, a in enumerate(positional) if a is argument)
        param = params[index] if index < len(params) else None
    for name, definition in init.self_definitions:
        if param is not None and isinstance(definition.value, cst.Name) and definition.value.value == param:
            return name
    return None


def aliased_layer_calls(analysis, scope: Scope):
    """(first call, second call, attribute, other attribute) in a method that calls one object under two
    attribute names (`self.conv1(x)` ... `self.conv2(h)` after `self.conv2 = self.conv1`)."""
    cls, self_name = scope.cls, scope.self_name
    if cls is None or self_name is None:
        return
    called = {}
    for call in scope.calls:
        func = call.node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == self_name:
            called.setdefault(func.attr.value, call)
    for attribute, call in called.items():
        other = next((name for name in same_object_attributes(cls, attribute, self_name)
                      if name in called and name != attribute), None)
        if other is not None and called[other].order < call.order:
            yield called[other], call, attribute, other


def layers_shared_by_built_objects(analysis, scope: Scope):
    """(call, argument name, class) where a loop or comprehension builds project modules and hands each
    the one object made before it (`norm = nn.LayerNorm(d)`; `[Block(d, norm) for _ in range(n)]`), which
    the class keeps as its own attribute."""
    for call in scope.calls:
        starts = [loop.start for loop in call.loops] + \
            [start for _, _, start, end in scope.comprehension_loops if start <= call.order <= end]
        if not starts:
            continue
        classes = [i.project_class for i in analysis.instances(call.node, scope, call.order) if i.project_class]
        if not classes or not analysis.is_module_class(classes[0]):
            continue
        init = analysis.project.method_of(classes[0], "__init__")
        for arg in call.node.args if init is not None else ():
            if not isinstance(arg.value, cst.Name) or arg.star:
                continue
            definitions = scope.definitions.get(arg.value.value, [])
            if definitions and all(d.order < max(starts) for d in definitions) and \
                    kept_as_attribute(init, call.node, arg):
                yield call, arg.value, classes[0]
