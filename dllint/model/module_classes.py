"""What a project class is: an nn.Module or a Lightning module, whether it holds dropout or
batch-norm, what its forward returns; and whether an expression holds a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Tuple, Union

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.call_arguments import bound_argument
from dllint.model.facts import ClassFacts, Definition, Scope
from dllint.model.origins import Instance, MAX_DEPTH
from dllint.model.project import instance_name
from dllint.model.value_kinds import Source, _agree

if TYPE_CHECKING:
    from dllint.model.flow import Analysis


# Layers whose dropout is off unless asked for, and the position of their `dropout` parameter.
_DROPOUT_DEFAULT_ZERO = {"LSTM": 5, "GRU": 5, "RNN": 6, "MultiheadAttention": 2}


@dataclass
class _Pending:
    pass


class ClassSummary:
    """Facts about one project class, derived on first use."""

    def __init__(self, analysis: Analysis, cls: ClassFacts) -> None:
        self.analysis = analysis
        self.cls = cls
        self._is_module: Optional[bool] = None
        self._dropout: Union[None, bool, _Pending] = _Pending()
        self._forward_sources: Dict[Tuple[int, ...], Optional[Source]] = {}

    @property
    def is_module(self) -> bool:
        if self._is_module is None:
            self._is_module = False  # guards cycles
            project = self.analysis.project
            for base in self.cls.bases:
                if api.is_module_base(project.qualify(base, self.cls.file)) or \
                        (isinstance(base, cst.Attribute) and base.attr.value in api.LIGHTNING_BASES):
                    self._is_module = True
            for base in project.base_classes(self.cls):
                if self.analysis.is_module_class(base):
                    self._is_module = True
        return self._is_module

    @property
    def is_lightning(self) -> bool:
        project = self.analysis.project
        if any(api.is_lightning_base(project.qualify(b, self.cls.file) or dotted_name(b)) for b in self.cls.bases):
            return True
        return any(self.analysis.class_summary(b).is_lightning for b in project.base_classes(self.cls))

    @property
    def has_dropout_or_batchnorm(self) -> Optional[bool]:
        if not isinstance(self._dropout, _Pending):
            return self._dropout
        self._dropout = None  # guards cycles
        verdict: Optional[bool] = False
        for scope in self.cls.file.class_scopes(self.cls):
            if _contains_dropout_call(scope.node, scope, self.analysis):
                self._dropout = True
                return True
        for attr, definitions in self.cls.attributes.items():
            for scope, definition in definitions:
                for instance in self.analysis.instances(definition.value, scope, definition.order):
                    if instance.project_class is not None and instance.project_class is not self.cls:
                        inner = self.analysis.class_summary(instance.project_class).has_dropout_or_batchnorm
                    elif instance.torch_class and instance.torch_class.startswith(api.NON_MODULE_TORCH_PREFIXES):
                        inner = False  # an optimizer, a tensor, a distribution kept on the module
                    elif instance.torch_class is None or not instance.torch_class.startswith("torch.nn."):
                        inner = None if self._looks_like_submodule(instance) else False
                    else:
                        inner = self.analysis._torch_ctor_has_dropout(instance, 0)
                    if inner:
                        self._dropout = True
                        return True
                    if inner is None:
                        verdict = None
        for base in self.analysis.project.base_classes(self.cls):
            inner = self.analysis.class_summary(base).has_dropout_or_batchnorm
            if inner:
                self._dropout = True
                return True
            if inner is None:
                verdict = None
        self._dropout = verdict
        return verdict

    def _looks_like_submodule(self, instance: Instance) -> bool:
        if instance.ctor is None:
            return False
        name = dotted_name(instance.ctor.func) or ""
        last = name.rsplit(".", 1)[-1]
        return bool(last) and (last[0].isupper() or "model" in last.lower() or "create" in last.lower())

    def forward_source(self, path: Tuple[int, ...], depth: int) -> Optional[Source]:
        """What `forward` returns (at `path` of a returned tuple), when all its returns agree."""
        if path in self._forward_sources:
            return self._forward_sources[path]
        self._forward_sources[path] = None  # guards recursion
        forward = self.analysis.project.method_of(self.cls, "forward")
        source: Optional[Source] = None
        if forward is None and not path and depth <= MAX_DEPTH:
            source = self._sequential_source(depth)
        if forward is not None and forward.returns and depth <= MAX_DEPTH:
            sources = []
            for order, value in forward.returns:
                origins = list(self.analysis.origins(value, forward, order, path, items=True))
                sources.append(self.analysis.origins_source(iter(origins), depth + 1) if origins else None)
            source = _agree(sources)
            if source is not None:
                source = Source(source.kind, source.node, source.scope, self.cls)
        self._forward_sources[path] = source
        return source


    def _sequential_source(self, depth: int) -> Optional[Source]:
        """An nn.Sequential subclass without its own forward returns what the last layer it hands to
        `super().__init__(a, b, c)` returns."""
        analysis = self.analysis
        if not any(analysis.torch_member(base, self.cls.file.module_scope, {"Sequential"}) for base in self.cls.bases
                   if self.cls.file.module_scope is not None):
            return None
        init = self.cls.methods.get("__init__")
        parent_init = [c for c in init.calls if c.method == "__init__" and c.node.args] if init is not None else []
        if len(parent_init) != 1:
            return None
        last = analysis._last_layer(parent_init[0].node, init)
        if last is None:
            return None
        found = _agree([analysis.module_output_source(i, (), depth + 1, last)
                        for i in analysis.instances(last, init, parent_init[0].order)])
        return Source(found.kind, found.node, found.scope, self.cls) if found is not None else None


class ModuleClasses:
    """Facts about project classes and model objects (part of Analysis)."""

    def class_summary(self, cls: ClassFacts) -> "ClassSummary":
        summary = self._class_info.get(id(cls))
        if summary is None:
            summary = ClassSummary(self, cls)
            self._class_info[id(cls)] = summary
        return summary

    def is_module_class(self, cls: ClassFacts) -> bool:
        return self.class_summary(cls).is_module

    def module_attributes(self, facts) -> Iterator[Tuple[ClassFacts, str, Scope, Definition]]:
        """Every `self.<attribute> = value` in the nn.Module classes of a file."""
        for cls in facts.all_class_list:
            if not self.is_module_class(cls):
                continue
            for attribute, definitions in cls.attributes.items():
                for scope, definition in definitions:
                    yield cls, attribute, scope, definition

    def is_model_expr(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int) -> bool:
        """Does `expr` (a callee) hold a model: a project nn.Module or a model-named variable?"""
        instances = self.instances(expr, scope, order)
        for instance in instances:
            if instance.project_class is not None and self.is_module_class(instance.project_class):
                return True
            if instance.torch_class and not api.is_torch_name(instance.torch_class):
                return True
        text = dotted_name(expr)
        if instances and all(i.torch_class and api.torch_member(i.torch_class, api.STATELESS_MODULES)
                             for i in instances):
            return False
        if any(i.torch_class and api.last_component(i.torch_class) in api.LOSS_CLASSES for i in instances):
            return False
        if text is not None and text == instance_name(scope) and scope.cls is not None:
            return self.is_module_class(scope.cls)  # `self(x)` runs a model only in an nn.Module
        return api.looks_like_model_call(text)

    def model_classes(self, expr, scope, order) -> List[Instance]:
        return self.instances(expr, scope, order)

    def has_dropout_or_batchnorm(self, expr, scope, order) -> Optional[bool]:
        """True/False when the model's classes are known; None when unknown."""
        instances = self.instances(expr, scope, order)
        if not instances:
            return None
        verdicts = set()
        for instance in instances:
            if instance.project_class is not None:
                verdicts.add(self.class_summary(instance.project_class).has_dropout_or_batchnorm)
            elif instance.torch_name and api.is_torch_name(instance.torch_class) and \
                    instance.torch_class.startswith("torch.nn."):
                verdicts.add(self._torch_ctor_has_dropout(instance, 0))
            else:
                verdicts.add(None)
        if True in verdicts:
            return True
        if None in verdicts:
            return None
        return False

    def _container_elements_known(self, instance: Instance, depth: int) -> Optional[bool]:
        """False when every layer of nn.Sequential(a, b, c) is known to hold no dropout/batch-norm."""
        arguments = [a for a in instance.ctor.args]  # type: ignore[union-attr]
        if depth > 3 or any(a.star or a.keyword for a in arguments):
            return None
        for argument in arguments:
            inner = self.instances(argument.value, instance.scope, 0)  # type: ignore[arg-type]
            if not inner:
                return None
            for element in inner:
                if element.project_class is not None:
                    verdict = self.class_summary(element.project_class).has_dropout_or_batchnorm
                elif element.torch_class and element.torch_class.startswith("torch.nn"):
                    verdict = self._torch_ctor_has_dropout(element, depth + 1)
                else:
                    verdict = None
                if verdict is not False:
                    return verdict
        return False

    def _torch_ctor_has_dropout(self, instance: Instance, depth: int) -> Optional[bool]:
        name = instance.torch_name
        if name in api.DROPOUT_MODULES or name in api.BATCHNORM_MODULES:
            return True
        if name in api.CONTAINER_MODULES and instance.ctor is not None and instance.scope is not None:
            if _contains_dropout_call(instance.ctor, instance.scope, self):
                return True
            return self._container_elements_known(instance, depth)
        if name in _DROPOUT_DEFAULT_ZERO:
            return _dropout_argument_set(instance.ctor, _DROPOUT_DEFAULT_ZERO[name])
        if name in ("Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
                    "TransformerDecoderLayer"):
            return True
        return False


def _dropout_argument_set(ctor: Optional[cst.Call], position: int) -> bool:
    """Does `nn.LSTM(...)` ask for dropout (a `dropout` argument other than a literal 0)?"""
    if ctor is None or any(arg.star for arg in ctor.args):
        return True
    value = bound_argument(ctor, "dropout", position)
    if value is None:
        return False
    return not (isinstance(value, (cst.Integer, cst.Float)) and float(value.value) == 0)


def _optimizes_manually(cls: ClassFacts) -> bool:
    for _, definition in cls.attributes.get("automatic_optimization", []):
        if isinstance(definition.value, cst.Name) and definition.value.value == "False":
            return True
    return False


def _contains_dropout_call(node: cst.CSTNode, scope: Scope, analysis: Analysis) -> bool:
    """Does any call lexically inside `node` build dropout/batch-norm or apply F.dropout?"""
    for call in scope.calls:
        qualified = analysis.qualify(call.node.func, scope)
        member = api.torch_member(qualified, api.DROPOUT_MODULES | api.BATCHNORM_MODULES | api.FUNCTIONAL_DROPOUTS
                                  | {"batch_norm"})
        if member and _is_within(call.node, node):
            return True
    return False


def _is_within(inner: cst.CSTNode, outer: cst.CSTNode) -> bool:
    # Calls of a scope are all within the scope node; for a ctor expression check identity of args.
    if isinstance(outer, (cst.FunctionDef, cst.Module)):
        return True
    stack = [outer]
    while stack:
        node = stack.pop()
        if node is inner:
            return True
        if isinstance(node, cst.Call):
            stack.extend(a.value for a in node.args)
            stack.append(node.func)
        elif isinstance(node, (cst.List, cst.Tuple)):
            stack.extend(e.value for e in node.elements)
        elif isinstance(node, (cst.ListComp, cst.GeneratorExp)):
            stack.append(node.elt)
        elif isinstance(node, cst.BinaryOperation):
            stack.extend((node.left, node.right))
        elif isinstance(node, cst.StarredElement):
            stack.append(node.value)
    return False
