"""DL503: a submodule created in __init__ that no method ever uses."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.bounds import number_value
from dllint.model.builder import descendants
from dllint.registry import rule


@rule("DL503")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # a test builds modules with unused layers on purpose (to test unused-parameter detection)
    analysis = ctx.analysis
    project = ctx.project
    for cls in ctx.file.all_class_list:
        if not analysis.is_module_class(cls) or project.method_of(cls, "forward") is None:
            continue
        family = [cls] + _ancestors(project, cls) + project.subclasses(cls)
        used = set()
        for member in family:
            for scope in _method_scopes(member):
                reads = scope.self_attribute_reads
                if scope.name == "__init__" and scope.cls is member:
                    used.update(name for name, nodes in reads.items() if len(nodes) > scope.member_reads.get(name, 0))
                else:
                    used.update(reads)
        if used & api.DYNAMIC_MODULE_ACCESS or _uses_getattr(cls):
            continue  # layers reached by name or by iteration: usage is not visible statically
        # `self.proj = self.input_proj = nn.Linear(...)`: one object under two names, used if either is.
        used_assignments = {id(d.node) for attribute in used for _, d in cls.attributes.get(attribute, [])
                            if d.node is not None}
        for attribute, definitions in cls.attributes.items():
            if attribute in used:
                continue
            for scope, definition in definitions:
                if scope.name != "__init__" or definition.unpack_path or id(definition.node) in used_assignments:
                    continue
                # Reads from outside (`model.classifier` in train.py) are looked up last: they parse other files.
                if _is_module(analysis, definition.value, scope, definition.order) and \
                        _matters(analysis, definition.value, scope, definition.order,
                                 lambda: _activates(analysis, cls, family, used)) and \
                        not _unreachable(scope, definition.node) and not project.read_from_outside(cls, attribute):
                    ctx.report(definition.node, f"self.{attribute} is created in __init__ but never used by forward "
                                                f"or any other method, so it does nothing (a forgotten dropout or "
                                                f"layer?); use it in forward or remove it.")
                    break


def _ancestors(project, cls, depth=0):
    """Base classes up the chain: a forward inherited from two modules up uses the layers it names."""
    bases = project.base_classes(cls) if depth < 5 else []
    return bases + [a for base in bases for a in _ancestors(project, base, depth + 1)]


def _matters(analysis, value, scope, order, activates) -> bool:
    """A layer whose absence changes something: parameters, a dropout with a non-zero rate, or the only
    nonlinearity the block would have. An unused ReLU next to the activations forward does apply, a
    pooling, or a dropout whose rate is 0 (a literal, or a parameter defaulting to 0) is harmless."""
    for instance in analysis.instances(value, scope, order):
        name = instance.torch_name
        if instance.project_class is not None or name not in api.STATELESS_MODULES:
            return True
        if name in api.NONLINEARITY_MODULES and not activates():
            return True
        if name in api.DROPOUT_MODULES and instance.ctor is not None:
            rate = next((a.value for a in instance.ctor.args if a.keyword is None or a.keyword.value == "p"), None)
            if rate is None or number_value(analysis, _default_of(rate, instance.scope), instance.scope) != 0:
                return True
    return False


def _activates(analysis, cls, family, used) -> bool:
    """Does the block apply a nonlinearity: an activation layer it uses (also inside an nn.Sequential),
    or an activation function (F.relu, torch.tanh, x.relu()) in its methods?"""
    for member in family:
        for scope in _method_scopes(member):
            if any((call.callee_text or "").rsplit(".", 1)[-1] in api.NONLINEARITY_CALLS for call in scope.calls):
                return True
    for attribute in used:
        for scope, definition in cls.attributes.get(attribute, []):
            nodes = descendants(definition.value) if definition.value is not None else []
            if any(isinstance(node, cst.Call) and analysis.torch_member(node.func, scope, api.NONLINEARITY_MODULES)
                   for node in nodes):
                return True
    return False


def _default_of(expr, scope):
    """`dropout` -> its default value when it is a parameter of the function building the layer."""
    if isinstance(expr, cst.Name) and scope is not None and expr.value in scope.params:
        for param in scope.node.params.params:
            if param.name.value == expr.value and param.default is not None:
                return param.default
    return expr


def _unreachable(scope, assignment) -> bool:
    """Is the assignment after a `raise` in the same block of __init__ (never executed)?"""
    for node in descendants(scope.node):
        if isinstance(node, cst.IndentedBlock):
            raised = False
            for statement in node.body:
                if raised and any(inner is assignment for inner in descendants(statement)):
                    return True
                raised = raised or isinstance(statement, cst.SimpleStatementLine) and \
                    any(isinstance(small, cst.Raise) for small in statement.body)
    return False


def _method_scopes(cls):
    return [s for s in cls.file.scopes if s.cls is cls]


def _uses_getattr(cls) -> bool:
    return any(call.callee_text in ("getattr", "setattr") for s in _method_scopes(cls) for call in s.calls)


def _is_module(analysis, value, scope, order) -> bool:
    for instance in analysis.instances(value, scope, order):
        if instance.project_class is not None and analysis.is_module_class(instance.project_class):
            return True
        name = instance.torch_name
        if instance.torch_class and instance.torch_class.startswith("torch.nn") and name and name[0].isupper() \
                and name not in api.LOSS_CLASSES and name not in api.PARAMETER_CLASSES:
            return True
    return False
