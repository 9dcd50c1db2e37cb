"""What kind of value an expression holds: the last activation that produced it (softmax,
log_softmax, sigmoid, ...) and where it runs, through helpers, module calls and what a model's forward
returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.facts import ClassFacts, Scope
from dllint.model.origins import Instance, MAX_DEPTH, Origin
from dllint.model.project import instance_name


@dataclass(frozen=True)
class Source:
    """Where a value's last meaningful operation happens (e.g. the softmax call)."""

    kind: str  # softmax | log_softmax | sigmoid | log_sigmoid
    node: cst.CSTNode
    scope: Optional[Scope]
    model_class: Optional[ClassFacts] = None  # set when a model's forward produces it


class ValueKinds:
    """Activation kinds of values (part of Analysis)."""

    # -- value kinds --------------------------------------------------------------
    def value_source(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int) -> Optional[Source]:
        """The last operation producing `expr` (softmax, log_softmax, sigmoid, ...) and where it runs.

        Known only when every origin agrees on the kind.
        """
        key = (id(expr), id(scope), order)
        if key not in self._sources:
            self._sources[key] = None  # guards recursion
            self._sources[key] = self._value_source(expr, scope, order)
        return self._sources[key]

    def _value_source(self, expr, scope, order) -> Optional[Source]:
        return self.origins_source(self.origins(expr, scope, order, items=True), 0)

    def value_kind(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int) -> Optional[str]:
        source = self.value_source(expr, scope, order)
        return source.kind if source else None

    def origins_source(self, origins: Iterator[Origin], depth: int) -> Optional[Source]:
        """The kind every origin of a value agrees on. An activation assigned into part of the tensor
        (`out[:, 4:] = sigmoid(out[:, 4:])`) is what the value is when every part assigned agrees on it;
        parts assigned of other kinds make it unknown."""
        whole: List[Optional[Source]] = []
        mixed_in: List[Optional[Source]] = []
        for origin in origins:
            (mixed_in if origin.mixed_in else whole).append(self._origin_source(origin, depth))
        if any(source is not None for source in mixed_in):
            return _agree(mixed_in)
        return _agree(whole)

    def _origin_source(self, origin: Origin, depth: int) -> Optional[Source]:
        expr, scope = origin.expr, origin.scope
        if isinstance(expr, cst.Subscript) and not origin.path and depth <= MAX_DEPTH:
            # `scores[mask]`, `probs[:, 1:]`: elements of a softmax output are probabilities too.
            return self._source_through(expr.value, scope, origin.order, depth + 1)
        if depth > MAX_DEPTH or not isinstance(expr, cst.Call):
            return None
        func = expr.func
        if not origin.path and expr.args and isinstance(expr.args[0].value, (cst.List, cst.Tuple)) and \
                expr.args[0].value.elements and self.torch_member(func, scope, api.JOINING_FUNCTIONS):
            # torch.cat([sigmoid(a), sigmoid(b)]): the parts agree on their kind
            return _agree([self._source_through(e.value, scope, origin.order, depth + 1)
                           for e in expr.args[0].value.elements])
        if not origin.path:
            activation = self.torch_member(func, scope, api.ACTIVATION_FUNCTIONS)
            if activation:
                return Source(api.ACTIVATION_FUNCTIONS[activation], expr, scope)
            if isinstance(func, cst.Attribute):
                method = func.attr.value
                if method in api.ACTIVATION_METHODS and self.qualify(func, scope) is None:
                    return Source(api.ACTIVATION_METHODS[method], expr, scope)
                if method in api.PASSTHROUGH_METHODS:
                    return self._source_through(func.value, scope, origin.order, depth)
            passthrough = self.torch_member(func, scope, api.PASSTHROUGH_FUNCTIONS)
            if passthrough and expr.args:
                return self._source_through(expr.args[0].value, scope, origin.order, depth)
        # Calling a module instance: an activation module, a Sequential, or a model class;
        # nn.parallel.data_parallel(module, inputs, devices) calls the module.
        called = expr.args[0].value if expr.args and self.torch_member(func, scope, {"data_parallel"}) else func
        sources = [self.module_output_source(i, origin.path, depth + 1, expr)
                   for i in self.instances(called, scope, origin.order)]
        if not sources and isinstance(func, cst.Name) and func.value == instance_name(scope) and scope.cls:
            sources.append(self.class_summary(scope.cls).forward_source(origin.path, depth + 1))
        return _agree(sources)

    def _source_through(self, expr, scope, order, depth) -> Optional[Source]:
        if depth > MAX_DEPTH:
            return None
        return self.value_source(expr, scope, order)

    def module_output_source(self, instance: Instance, path: Tuple[int, ...], depth: int,
                             call: cst.CSTNode) -> Optional[Source]:
        if instance.project_class is not None:
            return self.class_summary(instance.project_class).forward_source(path, depth)
        name = instance.torch_name
        if name is None or path:
            return None
        if name in api.ACTIVATION_MODULES:
            return Source(api.ACTIVATION_MODULES[name], call, instance.scope)
        if name == "Sequential" and instance.ctor is not None and instance.ctor.args and instance.scope:
            last_layer = self._last_layer(instance.ctor, instance.scope)
            if last_layer is None:
                return None
            inner = self.instances(last_layer, instance.scope, 0)
            return _agree([self.module_output_source(i, (), depth + 1, last_layer) for i in inner])
        return None

    def _last_layer(self, ctor: cst.Call, scope: Scope) -> Optional[cst.BaseExpression]:
        """The last layer of nn.Sequential(a, b, c) or nn.Sequential(*layers)."""
        last = ctor.args[-1]
        if not last.star:
            return last.value
        if not isinstance(last.value, cst.Name):
            return None
        call = self.call_site(ctor, scope)
        order = call.order if call is not None else scope.end
        appends = [c for c in scope.calls if c.method == "append" and c.receiver_text == last.value.value
                   and c.order < order and len(c.node.args) == 1]
        if appends:
            return appends[-1].node.args[0].value
        for origin in self.origins(last.value, scope, order):
            if isinstance(origin.expr, (cst.List, cst.Tuple)) and origin.expr.elements:
                element = origin.expr.elements[-1]
                return None if isinstance(element, cst.StarredElement) else element.value
        return None


def _agree(sources: List[Optional["Source"]]) -> Optional["Source"]:
    if not sources or any(s is None for s in sources):
        return None
    kinds = {s.kind for s in sources}  # type: ignore[union-attr]
    return sources[0] if len(kinds) == 1 else None
