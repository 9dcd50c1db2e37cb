"""Losses and what flows into them: loss calls and their inputs, what an expression is computed
from (through helpers, forward, in-place updates and callers' arguments), what is backpropagated, and
which operations cut the autograd graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Set, Tuple

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.call_arguments import bound_argument
from dllint.model.facts import CallSite, Scope
from dllint.model.module_classes import _optimizes_manually
from dllint.model.origins import MAX_CALLERS, MAX_DEPTH
from dllint.model.value_kinds import Source


@dataclass(frozen=True)
class LossCall:
    call: CallSite
    kind: str  # cross_entropy | nll | bce_logits | bce | mse | ...
    input: cst.BaseExpression
    target: Optional[cst.BaseExpression]


class GradientFlow:
    """Losses, dependencies and backpropagation (part of Analysis)."""

    # -- losses ---------------------------------------------------------------------
    def loss_calls(self, scope: Scope) -> List["LossCall"]:
        """Calls of torch loss functions or loss modules in a scope, with their input argument."""
        cached = self._losses.get(id(scope))
        if cached is not None:
            return cached
        found: List[LossCall] = []
        for call in scope.calls:
            kind = self.loss_kind(call)
            if kind is None:
                continue
            input_expr = bound_argument(call.node, "input", 0)
            target_expr = bound_argument(call.node, "target", 1)
            if input_expr is not None:
                found.append(LossCall(call, kind, input_expr, target_expr))
        self._losses[id(scope)] = found
        return found

    def activations_into_loss(self, scope: Scope, loss_kind: str,
                              activation: str) -> Iterator[Tuple[LossCall, Source]]:
        """Loss calls of `loss_kind` whose input was last produced by `activation` (e.g. softmax)."""
        for loss in self.loss_calls(scope):
            if loss.kind == loss_kind:
                source = self.value_source(loss.input, scope, loss.call.order)
                if source is not None and source.kind == activation:
                    yield loss, source

    def loss_kind(self, call: CallSite) -> Optional[str]:
        functional = self.torch_member(call.node.func, call.scope, api.FUNCTIONAL_LOSSES)
        if functional:
            return api.FUNCTIONAL_LOSSES[functional]
        if isinstance(call.node.func, cst.Attribute) and self.qualify(call.node.func, call.scope):
            return None  # some other library function
        kinds = {api.LOSS_CLASSES.get(i.torch_name or "") for i in self.instances(call.node.func, call.scope, call.order)
                 if i.torch_class and api.is_torch_name(i.torch_class)}
        return kinds.pop() if len(kinds) == 1 else None

    def dependencies(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                     depth: int = 0, seen: Optional[Set[int]] = None, stop=None,
                     bindings: Optional[Dict[Tuple[int, str], Tuple[cst.BaseExpression, Scope, int]]] = None,
                     ) -> Iterator[Tuple[cst.CSTNode, Scope, int]]:
        """Every sub-expression that `expr` is computed from, following local names backwards
        and into the return statements of project helpers (their parameters bound to the arguments).

        `stop(node, scope)` may return True to yield a node but not look inside it.
        """
        if seen is None:
            seen = set()
        bindings = bindings or {}
        if expr is None or depth > MAX_DEPTH * 3 or id(expr) in seen:
            return
        seen.add(id(expr))
        stack = [expr]
        while stack:
            node = stack.pop()
            yield node, scope, order
            if isinstance(node, cst.Name):
                yield from self._name_dependencies(node.value, scope, order, depth, seen, stop, bindings)
                continue
            if stop is not None and stop(node, scope):
                continue
            if isinstance(node, cst.Subscript) and depth < MAX_DEPTH and _literal_key(node):
                elements = self._selected_elements(node, scope, order)
                if elements is not None:
                    # `output["loss"]`: only that entry of what forward or a helper returns.
                    for element, element_scope, element_order, element_bindings in elements:
                        yield from self.dependencies(element, element_scope, element_order, depth + 1, seen, stop,
                                                     element_bindings or bindings)
                    continue
            if isinstance(node, cst.Call) and depth < MAX_DEPTH:
                call = self.call_site(node, scope)
                target = self.callee(call) if call is not None else None
                if target is None and call is not None:
                    target = self.forward_of_called_module(call)
                if isinstance(target, Scope) and target.returns and target.name != "__init__":
                    inner = dict(bindings)
                    offset = 1 if target.self_name is not None else 0
                    for index, param in enumerate(target.params):
                        argument = bound_argument(node, param, index - offset)
                        if argument is not None:
                            inner[(id(target), param)] = (argument, scope, call.order)
                    for return_order, value in target.returns:
                        yield from self.dependencies(value, target, return_order, depth + 1, seen, stop, inner)
            for child in _expression_children(node):
                stack.append(child)

    def forward_of_called_module(self, call: CallSite) -> Optional[Scope]:
        """The forward a call of a project module instance runs (`model(x)`, `self.head(h)`)."""
        func = call.node.func
        if not isinstance(func, (cst.Name, cst.Attribute)) or self.qualify(func, call.scope) is not None:
            return None
        instances = self.instances(func, call.scope, call.order)
        classes = {id(i.project_class): i.project_class for i in instances if i.project_class is not None}
        if len(classes) != 1 or len(instances) != len(classes):
            return None
        cls = next(iter(classes.values()))
        return self.project.method_of(cls, "forward") if self.is_module_class(cls) else None

    def _selected_elements(self, node: cst.Subscript, scope: Scope, order: int):
        """(expression, scope, order, bindings) of the entry `value["key"]` / `value[0]` selects, when
        every origin names one: a literal's element, or the element of what forward returns."""
        found = []
        for origin in self.origins(node, scope, order):
            if not origin.path:
                found.append((origin.expr, origin.scope, origin.order, None))
                continue
            call = self.call_site(origin.expr, origin.scope) if isinstance(origin.expr, cst.Call) else None
            forward = self.forward_of_called_module(call) if call is not None else None
            if forward is None:
                return None
            bindings = _parameter_bindings(forward, call)
            for return_order, value in forward.returns:
                for inner in self.origins(value, forward, return_order, origin.path):
                    if inner.path:
                        return None
                    found.append((inner.expr, inner.scope, inner.order, bindings))
        return found or None

    def _in_place_updates(self, scope: Scope, name: str) -> List[CallSite]:
        """`x.clamp_(0, 1)`, `x.add_(y)`: calls that change the tensor `name` holds in place."""
        index = self.memo("in_place_updates", scope, lambda s: _in_place_index(s))
        return index.get(name, [])  # type: ignore[union-attr]

    def _name_dependencies(self, name, scope, order, depth, seen, stop, bindings):
        reaching = self.reaching(scope, name, order)
        last = max((d.order for s, d in reaching if s is scope), default=None)
        if last is not None:
            for update in self._in_place_updates(scope, name):
                if last < update.order < order:
                    yield from self.dependencies(update.node, scope, update.order, depth + 1, seen, stop, bindings)
        for def_scope, definition in reaching:
            if definition.kind == "param":
                bound = bindings.get((id(def_scope), name))
                if bound is not None:
                    argument, caller, caller_order = bound
                    yield from self.dependencies(argument, caller, caller_order, depth + 1, seen, stop, bindings)
                    continue
                # Unbound: what any call site in the project passes.
                index = def_scope.params.index(name) if name in def_scope.params else -1
                offset = 1 if def_scope.self_name is not None else 0
                for call in self.project.callers(def_scope)[:MAX_CALLERS]:
                    argument = bound_argument(call.node, name, index - offset)
                    if argument is not None:
                        yield from self.dependencies(argument, call.scope, call.order, depth + 1, seen, stop,
                                                     bindings)
                continue
            if definition.kind == "for" and isinstance(definition.node, cst.For):
                iterated = _iterated_element(definition.node.iter, definition.unpack_path)
                if iterated is not None:
                    yield from self.dependencies(iterated, def_scope, definition.order, depth + 1, seen, stop,
                                                 bindings)
                continue
            if definition.value is None or definition.kind not in ("assign", "augassign", "with"):
                continue
            value = definition.value
            if definition.unpack_path and definition.kind != "augassign":
                # `loss, correct = step(...)`: `correct` depends on its own element of what is unpacked.
                for origin in self.origins(value, def_scope, definition.order, definition.unpack_path):
                    yield from self.dependencies(origin.expr, origin.scope, origin.order, depth + 1, seen, stop,
                                                 bindings)
                continue
            if isinstance(value, cst.AugAssign):
                # `total += x` depends on x and on what total was before.
                value = value.value
                key = id(definition)
                if key not in seen:
                    seen.add(key)
                    yield from self._name_dependencies(name, def_scope, definition.order, depth + 1, seen, stop,
                                                       bindings)
            yield from self.dependencies(value, def_scope, definition.order, depth + 1, seen, stop, bindings)

    def backpropagated_losses(self, scope: Scope) -> List[Tuple[cst.BaseExpression, int, cst.CSTNode]]:
        """(loss expression, order, backward node) for every backward in a scope; a Lightning
        training_step's returned loss counts too, since the framework backpropagates it."""
        found = []
        for event in self.events(scope, depth=0):
            if event.kind == "backward":
                loss = self.backpropagated(event.call.node)
                if loss is not None:
                    found.append((loss, event.site_order, event.node))
        # With manual optimization (manual_backward here, or automatic_optimization = False) the returned
        # value is only logged.
        if scope.name == "training_step" and scope.cls is not None and self.class_summary(scope.cls).is_lightning \
                and not found and not any(map(_optimizes_manually, [scope.cls] + self.project.base_classes(scope.cls))):
            for order, value in scope.returns:
                if value is not None:
                    found.append((value, order, value))
        return found

    def backpropagated(self, call: cst.Call) -> Optional[cst.BaseExpression]:
        """`loss` in `loss.backward()`, `scaler.scale(loss).backward()`, `accelerator.backward(loss)`."""
        func = call.func
        if not isinstance(func, cst.Attribute):
            return call.args[0].value if call.args else None
        receiver = func.value
        receiver_text = dotted_name(receiver) or ""
        if func.attr.value == "manual_backward" or (call.args and (
                "accelerator" in receiver_text or "fabric" in receiver_text)):
            return call.args[0].value if call.args else None
        if isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) and \
                receiver.func.attr.value == "scale" and receiver.args:
            return receiver.args[0].value
        return receiver

    def is_gradient_barrier(self, node: cst.CSTNode, scope: Scope) -> bool:
        """Does this operation cut the autograd graph (detach, .item(), argmax, torch.tensor(...), ...)?"""
        if isinstance(node, cst.Comparison):
            return True
        if isinstance(node, cst.Attribute):
            return node.attr.value == "data"
        if not isinstance(node, cst.Call):
            return False
        func = node.func
        qualified = self.qualify(func, scope)
        if qualified is not None:
            return api.torch_member(qualified, api.GRADIENT_BARRIER_FUNCTIONS) is not None or \
                qualified in ("float", "int", "round")
        if isinstance(func, cst.Attribute):
            return func.attr.value in api.GRADIENT_BARRIER_METHODS
        return isinstance(func, cst.Name) and func.value in ("float", "int", "round", "bool")

    def is_training_output(self, expr: cst.BaseExpression, scope: Scope, order: int, with_gradient=False) -> bool:
        """Is `expr` computed from a model's forward or a loss (not from inputs or targets only)?
        `with_gradient`: through differentiable operations only (not from `.item()`, `.detach()`)."""
        stop = self.is_gradient_barrier if with_gradient else None
        for node, node_scope, node_order in self.dependencies(expr, scope, order, stop=stop):
            if stop is not None and self.is_gradient_barrier(node, node_scope):
                continue
            if isinstance(node, cst.Call):
                if self.is_model_expr(node.func, node_scope, node_order) and not isinstance(node.func, cst.Call):
                    return True
                if node_scope.name == "forward" and self._is_layer_with_weights(node.func, node_scope, node_order):
                    return True  # inside a model, a layer of its own (`self.head(h)`)
                if self.loss_kind_of_node(node, node_scope, node_order):
                    return True
        return False

    def _is_layer_with_weights(self, func: cst.BaseExpression, scope: Scope, order: int) -> bool:
        if not isinstance(func, cst.Attribute) or scope.cls is None or not self.is_module_class(scope.cls):
            return False
        instances = self.instances(func, scope, order)
        return bool(instances) and all(
            i.torch_class and i.torch_class.startswith("torch.nn.") and i.torch_name not in api.STATELESS_MODULES
            and i.torch_name not in api.LOSS_CLASSES for i in instances)

    def loss_kind_of_node(self, node: cst.Call, scope: Scope, order: int) -> Optional[str]:
        call = self.call_site(node, scope)
        return self.loss_kind(call) if call is not None else None


def _literal_key(node: cst.Subscript) -> bool:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return False
    return isinstance(node.slice[0].slice.value, (cst.Integer, cst.SimpleString))


def _parameter_bindings(target: Scope, call: CallSite):
    """{(target, parameter): (argument, caller scope, order)} for a call of `target`."""
    bindings = {}
    offset = 1 if target.self_name is not None else 0
    for index, param in enumerate(target.params):
        argument = bound_argument(call.node, param, index - offset)
        if argument is not None:
            bindings[(id(target), param)] = (argument, call.scope, call.order)
    return bindings


def _in_place_index(scope: Scope) -> Dict[str, List[CallSite]]:
    index: Dict[str, List[CallSite]] = {}
    for call in scope.calls:
        method = call.method or ""
        if call.receiver_text and method.endswith("_") and not method.startswith("_"):
            index.setdefault(call.receiver_text, []).append(call)
    return index


def _iterated_element(iterated: cst.BaseExpression, path: Tuple[int, ...]) -> Optional[cst.BaseExpression]:
    """What a `for` target is an element of: `losses` for `loss` in `for loss in losses`, `parts` for
    `value` in `for key, value in parts.items()`; None for counters, keys and indices."""
    for _ in range(4):
        if not isinstance(iterated, cst.Call):
            return iterated
        name = dotted_name(iterated.func) or ""
        method = iterated.func.attr.value if isinstance(iterated.func, cst.Attribute) else ""
        if name == "enumerate" and iterated.args:
            if not path or path[0] == 0:
                return None  # the index (or the pair, whose index part is a number)
            iterated, path = iterated.args[0].value, path[1:]
        elif name == "zip" and path and isinstance(path[0], int) and path[0] < len(iterated.args):
            iterated, path = iterated.args[path[0]].value, path[1:]
        elif method == "items" and not iterated.args:
            if not path or path[0] == 0:
                return None  # the key
            iterated, path = iterated.func.value, path[1:]  # type: ignore[attr-defined]
        elif method == "values" and not iterated.args:
            iterated = iterated.func.value  # type: ignore[attr-defined]
        else:
            return None if name in ("range", "len", "zip", "enumerate") else iterated
    return None


def _expression_children(node: cst.CSTNode) -> List[cst.CSTNode]:
    if isinstance(node, cst.Call):
        return [node.func] + [a.value for a in node.args]
    if isinstance(node, cst.Attribute):
        return [node.value]
    if isinstance(node, cst.BinaryOperation):
        return [node.left, node.right]
    if isinstance(node, cst.UnaryOperation):
        return [node.expression]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [e.value for e in node.elements]
    if isinstance(node, cst.Subscript):
        return [node.value]
    if isinstance(node, cst.IfExp):
        return [node.body, node.orelse]
    if isinstance(node, cst.StarredElement):
        return [node.value]
    if isinstance(node, cst.Comparison):
        return [node.left] + [c.comparator for c in node.comparisons]
    if isinstance(node, cst.Dict):
        return [e.value for e in node.elements]
    return []
