"""What values are and what code does: value kinds, instance classes, ordered training events.

Everything here is derived lazily from the collected facts and cached, so checks
that do not ask for a fact never pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Set, Tuple, Union

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.facts import CallSite, ClassFacts, Definition, GradClear, Loop, Scope
from dllint.model.project import Project, Target, instance_name

MAX_DEPTH = 8
MAX_CALLERS = 8  # call sites followed backwards from one parameter
HELPER_DEPTH = 2  # how many levels of helper calls are expanded into a caller's events


ORIGIN_BUDGET = 256


class _Walk:
    """The state of one origins() query: what was visited, and how much budget is left."""

    __slots__ = ("seen", "left", "items", "any_branch")

    def __init__(self, items: bool = False, any_branch: bool = False) -> None:
        self.seen: Set[Tuple[int, Tuple[int, ...]]] = set()
        self.left = ORIGIN_BUDGET
        self.items = items  # also yield values assigned into part of a tensor (`out[:, 4:] = ...`)
        self.any_branch = any_branch  # also follow definitions on an `if` branch another branch redefines

    def enter(self, key: Tuple[int, Tuple[int, ...]]) -> bool:
        if key in self.seen or self.left <= 0:
            return False
        self.seen.add(key)
        self.left -= 1
        return True


@dataclass(frozen=True)
class Origin:
    """An expression that produces a value, with the scope and point where it runs."""

    expr: cst.BaseExpression
    scope: Scope
    order: int
    path: Tuple[int, ...] = ()
    mixed_in: bool = False  # assigned into part of the value (`out[:, 4:] = value`), not the whole of it


@dataclass(frozen=True)
class Source:
    """Where a value's last meaningful operation happens (e.g. the softmax call)."""

    kind: str  # softmax | log_softmax | sigmoid | log_sigmoid
    node: cst.CSTNode
    scope: Optional[Scope]
    model_class: Optional[ClassFacts] = None  # set when a model's forward produces it


@dataclass(frozen=True)
class Instance:
    """What an object is: a project class, a torch class (qualified), or unknown."""

    project_class: Optional[ClassFacts] = None
    torch_class: Optional[str] = None
    ctor: Optional[cst.Call] = None
    scope: Optional[Scope] = None

    @property
    def torch_name(self) -> Optional[str]:
        return api.last_component(self.torch_class) if self.torch_class else None


@dataclass(frozen=True)
class LossCall:
    call: CallSite
    kind: str  # cross_entropy | nll | bce_logits | bce | mse | ...
    input: cst.BaseExpression
    target: Optional[cst.BaseExpression]


@dataclass(frozen=True)
class Event:
    """A training-relevant action, seen from the scope being analysed.

    `site` is the call in that scope that causes it (the action itself, or the
    helper call that performs it); `call` is where it really happens.
    """

    kind: str  # backward | step | zero_grad | eval | train | forward | scheduler_step | optimizer_ctor
    call: Union[CallSite, GradClear]
    site: cst.CSTNode
    site_order: int
    loops: Tuple[Loop, ...]  # loops of the analysed scope around the site
    inner_loops: Tuple[Loop, ...]  # loops inside helpers between the site and the action
    receiver: Optional[str]
    helpers: Tuple[Scope, ...] = ()
    detail: str = ""  # "scaler" for scaler.step(opt) / scaler.scale(loss).backward()

    @property
    def node(self) -> cst.CSTNode:
        return self.call.node

    @property
    def scope(self) -> Scope:
        return self.call.scope  # type: ignore[return-value]


class Analysis:
    """Derived facts over a project, cached per object."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._events: Dict[Tuple[int, int], List[Event]] = {}
        self._class_info: Dict[int, "ClassSummary"] = {}
        self._losses: Dict[int, List[LossCall]] = {}
        self._call_index: Dict[int, Dict[int, CallSite]] = {}
        self._instances: Dict[Tuple[int, int, int, bool], List[Instance]] = {}
        self._sources: Dict[Tuple[int, int, int], Optional[Source]] = {}
        self._memo: Dict[Tuple[str, int], object] = {}

    def memo(self, question: str, subject: object, compute):
        """A derived fact computed once per analysis: `compute(subject)`, cached by identity."""
        key = (question, id(subject))
        if key not in self._memo:
            self._memo[key] = compute(subject)
        return self._memo[key]

    # -- names and definitions ---------------------------------------------------
    def qualify(self, expr: Optional[cst.CSTNode], scope: Scope) -> Optional[str]:
        return self.project.qualify(expr, scope.file)

    def torch_member(self, expr: Optional[cst.CSTNode], scope: Scope, names) -> Optional[str]:
        return api.torch_member(self.qualify(expr, scope), names)

    def reaching(self, scope: Scope, name: str, order: int) -> List[Tuple[Scope, Definition]]:
        """Definitions of `name` that may reach a use at `order` (the last one before it)."""
        walk: Optional[Scope] = scope
        while walk is not None:
            defs = walk.definitions.get(name)
            if defs:
                if walk is not scope:
                    return [(walk, defs[-1])]
                before = [d for d in defs if d.order < order]
                if before:
                    last = before[-1]
                    # In a loop, a definition later in the body reaches the next iteration's use, unless
                    # the name is always redefined first in the loop itself.
                    carried = [d for d in defs if d.order >= order and d.kind != "for" and d.loops and
                               d.loops[-1].contains(order) and last.order < d.loops[-1].start]
                    return [(walk, last)] + [(walk, d) for d in carried]
                return [(walk, defs[-1])]
            walk = walk.parent
        return []

    def reaching_on_any_branch(self, scope: Scope, name: str, order: int) -> List[Tuple[Scope, Definition]]:
        """`reaching`, and the definitions on other branches of an `if` that the later ones do not replace
        on every path: `sampler = DistributedSampler(ds)` in `if distributed:` as well as the
        `sampler = None` of its `else`."""
        from dllint.model.loops import mutually_exclusive  # loops imports this module

        found = self.reaching(scope, name, order)
        earlier = [d for d in scope.definitions.get(name, ()) if d.order < order]
        for index, definition in enumerate(earlier):
            if any(d is definition for _, d in found):
                continue
            later = earlier[index + 1:]
            if later and all(mutually_exclusive(definition.conditions, d.conditions) for d in later):
                found.append((scope, definition))
        return found

    def origins(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                path: Tuple[int, ...] = (), depth: int = 0, items: bool = False,
                any_branch: bool = False) -> Iterator[Origin]:
        """The expressions that produce the value of `expr`, following names, `self.x` and parameters.

        `items`: also the values assigned into part of a tensor between its definition and the use
        (`out[:, 4:] = torch.sigmoid(out[:, 4:])`), marked `mixed_in`; the object itself is unchanged.
        `any_branch`: a name may hold what any branch of an `if` gave it (`reaching_on_any_branch`), not
        only what the last definition before the use gave it.
        Each expression is visited once per query, and a query visits at most ORIGIN_BUDGET of them,
        so recursive helpers and long call chains stay linear.
        """
        yield from self._origins(expr, scope, order, path, depth, _Walk(items, any_branch))

    def _origins(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                 path: Tuple[int, ...], depth: int, walk: "_Walk") -> Iterator[Origin]:
        if expr is None or depth > MAX_DEPTH or not walk.enter((id(expr), path)):
            return
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                yield Origin(expr, scope, order, path)
                return
            reaching = self.reaching_on_any_branch(scope, expr.value, order) if walk.any_branch else \
                self.reaching(scope, expr.value, order)
            for def_scope, definition in reaching:
                if definition.kind == "param":
                    yield from self._parameter_origins(def_scope, definition, path, depth, walk)
                elif definition.kind in ("assign", "with") and definition.value is not None:
                    yield from self._origins(definition.value, def_scope, definition.order,
                                             definition.unpack_path + path, depth + 1, walk)
            if walk.items and not path:
                for item_scope, item in self._item_assignments_between(reaching, scope, expr.value, order):
                    for origin in self._origins(item.value, item_scope, item.order, (), depth + 1, walk):
                        yield replace(origin, mixed_in=True)
            return
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            self_name = instance_name(scope)
            cls = scope.cls
            if cls is not None and expr.value.value == self_name:
                for attr_scope, definition in self.attribute_definitions(cls, expr.attr.value):
                    if definition.value is not None:
                        yield from self._origins(definition.value, attr_scope, definition.order,
                                                 definition.unpack_path + path, depth + 1, walk)
                return
        if isinstance(expr, cst.IfExp):
            # `net = DDP(net) if distributed else net`: either branch may produce the value.
            yield from self._origins(expr.body, scope, order, path, depth + 1, walk)
            yield from self._origins(expr.orelse, scope, order, path, depth + 1, walk)
            return
        if isinstance(expr, (cst.Tuple, cst.List)) and path:
            # A key (`arch["pi"]`) into a list or tuple names no element: the value is a dict elsewhere.
            elements = [e.value for e in expr.elements]
            if isinstance(path[0], int) and path[0] < len(elements):
                yield from self._origins(elements[path[0]], scope, order, path[1:], depth + 1, walk)
            return
        if isinstance(expr, cst.Call) and isinstance(expr.func, (cst.Name, cst.Attribute)):
            passed = self._returned_argument(expr, scope, path)
            if passed is not None:
                # `model, optimizer = fabric.setup(model, optimizer)`: the same objects, wrapped.
                yield from self._origins(passed[0], scope, order, passed[1], depth + 1, walk)
                return
            call = self.call_site(expr, scope)
            target = self.callee(call) if call is not None else None
            if isinstance(target, Scope) and target.returns and target.name != "__init__":
                # A helper's result is what its return statements produce.
                for return_order, value in target.returns:
                    yield from self._origins(value, target, return_order, path, depth + 1, walk)
                return
        if isinstance(expr, cst.DictComp) and path and isinstance(path[0], str):
            # `{task: DistributedSampler(ds) for task, ds in sets.items()}["detection"]`: every entry is the
            # comprehension's value.
            yield from self._origins(expr.value, scope, order, path[1:], depth + 1, walk)
            return
        if isinstance(expr, cst.Dict) and path and isinstance(path[0], str):
            for element in expr.elements:
                if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString) and \
                        element.key.evaluated_value == path[0]:
                    yield from self._origins(element.value, scope, order, path[1:], depth + 1, walk)
            return
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
            index = expr.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                yield from self._origins(expr.value, scope, order, (int(index.value.value),) + path, depth + 1, walk)
                return
            if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                # outputs["probs"] where forward returns {"logits": ..., "probs": ...}
                key = index.value.evaluated_value
                if isinstance(key, str):
                    yield from self._origins(expr.value, scope, order, (key,) + path, depth + 1, walk)
                    return
        yield Origin(expr, scope, order, path)

    def _item_assignments_between(self, reaching: List[Tuple[Scope, Definition]], scope: Scope, name: str,
                                  order: int) -> List[Tuple[Scope, Definition]]:
        """`name[...] = value` after the definitions that reach a use of `name` and before the use."""
        found: Dict[int, Tuple[Scope, Definition]] = {}
        for def_scope, definition in reaching:
            until = order if def_scope is scope else def_scope.end
            for item in def_scope.item_assignments.get(name, ()):
                if definition.order < item.order < until and item.value is not None:
                    found[id(item)] = (def_scope, item)
        return sorted(found.values(), key=lambda pair: pair[1].order)

    def _returned_argument(self, call: cst.Call, scope: Scope,
                           path: Tuple[int, ...]) -> Optional[Tuple[cst.BaseExpression, Tuple[int, ...]]]:
        """(argument, rest of path) when `call` hands back its arguments wrapped, in order
        (`fabric.setup(model, optimizer)`, `accelerator.prepare(model, loader)`)."""
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in api.ARGUMENT_RETURNING_METHODS or \
                self.qualify(func, scope) is not None:
            return None
        arguments = [a for a in call.args if a.keyword is None and not a.star]
        if len(arguments) != len(call.args) or not arguments:
            return None
        if path and isinstance(path[0], int) and path[0] < len(arguments) and len(arguments) > 1:
            return arguments[path[0]].value, path[1:]
        if len(arguments) == 1:
            return arguments[0].value, path
        return None

    def callee(self, call: CallSite) -> Optional[Target]:
        """The project function or method a call runs: what the project resolves by name, or a method of
        the project class the receiver is an instance of (`scaler(loss, opt)` runs `__call__`,
        `optimizer.step_and_update_lr()` runs that method of the wrapper class)."""
        found = self.project.callee(call)
        if found is not None:
            return found
        key = ("instance_callee", id(call))
        if key not in self._memo:
            self._memo[key] = None  # guards recursion: an instance built by a call of the same method
            self._memo[key] = self._instance_callee(call)
        return self._memo[key]  # type: ignore[return-value]

    def _instance_callee(self, call: CallSite) -> Optional[Scope]:
        func = call.node.func
        if isinstance(func, cst.Attribute):
            receiver, method = func.value, func.attr.value
        elif isinstance(func, cst.Name):
            receiver, method = func, "__call__"
        else:
            return None
        if self.qualify(receiver, call.scope) is not None:
            return None  # a module or a name imported from elsewhere
        instances = self.instances(receiver, call.scope, call.order)
        classes = {id(i.project_class): i.project_class for i in instances if i.project_class is not None}
        if len(classes) != 1 or len(instances) != len(classes):
            return None
        cls = next(iter(classes.values()))
        if method == "__call__" and self.is_module_class(cls):
            return None  # calling a module runs forward through nn.Module.__call__: a forward pass
        return self.project.method_of(cls, method)

    def attribute_definitions(self, cls: ClassFacts, attr: str) -> List[Tuple[Scope, Definition]]:
        """`self.<attr> = value` in the class, or else in its project bases."""
        found = list(cls.definitions_of(attr))
        if not found:
            for base in self.project.base_classes(cls):
                found.extend(base.definitions_of(attr))
        return found

    def _parameter_origins(self, scope: Scope, definition: Definition, path: Tuple[int, ...],
                           depth: int, walk: "_Walk") -> Iterator[Origin]:
        """Arguments that call sites in the project pass for this parameter."""
        if definition.value is not None:
            yield from self._origins(definition.value, scope, scope.start, path, depth + 1, walk)
        try:
            index = scope.params.index(definition.name)
        except ValueError:
            return
        for call in self.project.callers(scope):
            offset = 1 if scope.self_name is not None else 0
            argument = bound_argument(call.node, definition.name, index - offset)
            if argument is not None:
                yield from self._origins(argument, call.scope, call.order, path, depth + 1, walk)

    # -- what an object is -------------------------------------------------------
    def instances(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                  depth: int = 0, any_branch: bool = False) -> List[Instance]:
        """The classes `expr` may be an instance of (empty when nothing is known). `any_branch`: also
        what a definition on any branch of an `if` gives it (see `reaching_on_any_branch`)."""
        if depth == 0:
            key = (id(expr), id(scope), order, any_branch)
            cached = self._instances.get(key)
            if cached is None:
                cached = self._instances[key] = self.instances(expr, scope, order, 1, any_branch)
            return cached
        found: List[Instance] = []
        if depth > MAX_DEPTH:
            return found
        for origin in self.origins(expr, scope, order, any_branch=any_branch):
            if origin.path:
                continue
            value = origin.expr
            # `model = Net().to(device)`, `model = DDP(model)`: look through wrappers.
            moved = False
            while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                    value.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half", "train", "eval"):
                value, moved = value.func.value, True
            if moved and not isinstance(value, cst.Call):
                # `model = model.to(device)`: the object the name held before.
                found.extend(self.instances(value, origin.scope, origin.order, depth + 1, any_branch))
                continue
            if isinstance(value, cst.Call):
                wrapped = self._unwrap_parallel(value, origin.scope)
                if wrapped is not None:
                    found.extend(self.instances(wrapped, origin.scope, origin.order, depth + 1, any_branch))
                    continue
                target = self.project.resolve_name(value.func, origin.scope.file) \
                    if isinstance(value.func, (cst.Name, cst.Attribute)) else None
                if isinstance(target, ClassFacts):
                    found.append(Instance(project_class=target, ctor=value, scope=origin.scope))
                    continue
                qualified = self.qualify(value.func, origin.scope)
                if api.is_torch_name(qualified):
                    found.append(Instance(torch_class=qualified, ctor=value, scope=origin.scope))
                else:
                    found.append(Instance(ctor=value, scope=origin.scope))
        return found

    def _unwrap_parallel(self, call: cst.Call, scope: Scope) -> Optional[cst.BaseExpression]:
        name = dotted_name(call.func)
        if name and api.last_component(name) in ("DataParallel", "DistributedDataParallel", "DDP", "compile",
                                                 "FullyShardedDataParallel", "FSDP") and call.args:
            return call.args[0].value
        return None

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

    def value_kind(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int) -> Optional[str]:
        source = self.value_source(expr, scope, order)
        return source.kind if source else None

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

    def call_site(self, node: cst.CSTNode, scope: Scope) -> Optional[CallSite]:
        index = self._call_index.get(id(scope))
        if index is None:
            index = {id(c.node): c for c in scope.calls}
            self._call_index[id(scope)] = index
        return index.get(id(node))

    # -- events ---------------------------------------------------------------------
    def events(self, scope: Scope, depth: int = HELPER_DEPTH) -> List[Event]:
        """Training actions of a scope in source order, with helpers' actions expanded at their call."""
        key = (id(scope), depth)
        cached = self._events.get(key)
        if cached is not None:
            return cached
        self._events[key] = []  # guards recursion
        result: List[Event] = []
        items: List[Tuple[int, object]] = [(c.order, c) for c in scope.calls]
        items += [(g.order, g) for g in scope.grad_clears]
        items.sort(key=lambda item: item[0])
        for order, item in items:
            if isinstance(item, GradClear):
                result.append(Event("zero_grad", item, item.node, order, item.loops, (), None))
                continue
            call: CallSite = item  # type: ignore[assignment]
            kind, receiver = self.classify_call(call)
            if kind is not None:
                result.append(Event(kind, call, call.node, order, call.loops, (), receiver,
                                    detail=self._detail(call, kind)))
                continue
            if depth > 0:
                target = self.callee(call)
                if isinstance(target, Scope) and target is not scope:
                    for inner in self.events(target, depth - 1):
                        result.append(Event(inner.kind, inner.call, call.node, order, call.loops,
                                            inner.loops + inner.inner_loops, inner.receiver,
                                            (target,) + inner.helpers, inner.detail))
        self._events[key] = result
        return result

    def _detail(self, call: CallSite, kind: str) -> str:
        func = call.node.func
        if kind == "step" and isinstance(func, cst.Attribute) and \
                self.object_role(func.value, call.scope, call.order) == "scaler":
            return "scaler"
        if kind == "backward" and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call) and \
                isinstance(func.value.func, cst.Attribute) and func.value.func.attr.value == "scale":
            return "scaler"
        return ""

    def classify_call(self, call: CallSite) -> Tuple[Optional[str], Optional[str]]:
        """The training action a call performs, and on what (receiver text)."""
        method, receiver = call.method, call.receiver_text
        node, scope = call.node, call.scope
        if method == "backward":
            qualified = self.qualify(node.func, scope)
            if qualified is not None and qualified != "torch.autograd.backward":
                return None, None  # e.g. torch.distributed.autograd.backward: context-local gradients
            return "backward", receiver
        if method == "manual_backward":
            return "backward", receiver
        if method == "zero_grad":
            return "zero_grad", receiver
        if method is None and call.callee_text == "zero_grad":
            return "zero_grad", None  # a helper that clears the parameters it is given: zero_grad(model_params)
        if method == "set_epoch":
            return "set_epoch", receiver
        if method in ("update", "unscale_") and self.object_role(node.func.value, scope, call.order) == "scaler":
            return ("scaler_update" if method == "update" else "unscale"), receiver
        if method in ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm"):
            return "clip_grad", receiver
        if method == "step":
            role = self.object_role(node.func.value, scope, call.order)  # type: ignore[attr-defined]
            if role == "optimizer":
                return "step", receiver
            if role == "scaler" and node.args:
                return "step", dotted_name(node.args[0].value)
            if role == "scheduler":
                return "scheduler_step", receiver
            return None, None
        if method in ("eval", "train"):
            receiver = dotted_name(strip_device_moves(node.func.value))  # type: ignore[attr-defined]
        if method in ("eval", "train") and receiver and not node.args or (
                receiver and method == "train" and len(node.args) == 1 and _is_bool(node.args[0].value)):
            if not api.looks_like_model(receiver) and receiver != instance_name(scope) and \
                    not self.is_model_expr(node.func.value, scope, call.order) and \
                    scope.iterated_by(receiver, call.order) is None:  # `for member in ensemble: member.eval()`
                return None, None
            if method == "train" and node.args and _is_false(node.args[0].value):
                return "eval", receiver
            return method, receiver
        qualified = self.qualify(node.func, scope)
        if qualified:
            if qualified.endswith("autograd.backward"):
                return "backward", None
            if api.torch_member(qualified, api.OPTIMIZER_CLASSES) and ".optim" in qualified:
                return "optimizer_ctor", None
        if isinstance(node.func, (cst.Name, cst.Attribute)) and qualified is None and \
                self.is_model_expr(node.func, scope, call.order) and self.callee(call) is None:
            return "forward", call.callee_text
        return None, None

    def optimized_model(self, step_call: CallSite) -> Optional[str]:
        """`model` when the optimizer stepped here was built as `SGD(model.parameters(), ...)`."""
        func = step_call.node.func
        if not isinstance(func, cst.Attribute):
            return None
        optimizer = func.value
        if self.object_role(optimizer, step_call.scope, step_call.order) == "scaler" and step_call.node.args:
            optimizer = step_call.node.args[0].value
        models = set()
        for instance in self.instances(optimizer, step_call.scope, step_call.order):
            params = bound_argument(instance.ctor, "params", 0) if instance.ctor is not None else None
            if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute) and \
                    params.func.attr.value in ("parameters", "named_parameters"):
                models.add(dotted_name(params.func.value))
            else:
                models.add(None)
        return models.pop() if len(models) == 1 else None

    def object_role(self, expr: cst.BaseExpression, scope: Scope, order: int) -> Optional[str]:
        """optimizer | scheduler | scaler | None, from how the object was built or named."""
        for instance in self.instances(expr, scope, order):
            qualified = instance.torch_class or ""
            last = api.last_component(qualified) if qualified else ""
            if ".lr_scheduler" in qualified or last in api.SCHEDULER_CLASSES:
                return "scheduler"
            if last == "GradScaler":
                return "scaler"
            if ".optim" in qualified or last in api.OPTIMIZER_CLASSES:
                return "optimizer"
        text = dotted_name(expr)
        if text and "scaler" in text.rsplit(".", 1)[-1].lower():
            return "scaler"
        if api.looks_like_scheduler(text):
            return "scheduler"
        if api.looks_like_optimizer(text):
            return "optimizer"
        return None

    # -- loops ------------------------------------------------------------------------
    def loop_events(self, loop: Loop) -> List[Event]:
        return [e for e in self.events(loop.scope) if loop in e.loops]

    def loop_iterable(self, loop: Loop) -> Optional[cst.BaseExpression]:
        """What a loop takes its items from, looking through enumerate(), tqdm(), zip(), iter(), a
        progress bar kept in a variable, a wrapper given the loader first (`logger.log_every(loader,
        50)`), and, for a `while` loop, what `next(batches)` in its body draws from."""
        expr = loop.iter_expr if loop.iter_expr is not None else self._drawn_with_next(loop)
        for _ in range(MAX_DEPTH):
            if isinstance(expr, cst.Name):
                origins = [o.expr for o in self.origins(expr, loop.scope, loop.start) if not o.path]
                if len(origins) != 1 or not isinstance(origins[0], cst.Call):
                    break
                expr_origin = origins[0]
                if not self._wraps_an_iterable(expr_origin, loop.scope):
                    break
                expr = expr_origin
            elif isinstance(expr, cst.Call) and self._wraps_an_iterable(expr, loop.scope):
                expr = expr.args[0].value
            else:
                break
        return expr

    def _wraps_an_iterable(self, call: cst.Call, scope: Scope) -> bool:
        if not call.args or call.args[0].keyword is not None or call.args[0].star:
            return False
        if dotted_name(call.func) in _ITERATION_WRAPPERS:
            return True
        first = call.args[0].value
        return isinstance(call.func, cst.Attribute) and self.qualify(call.func, scope) is None and \
            api.looks_like_loader(dotted_name(first))

    def _drawn_with_next(self, loop: Loop) -> Optional[cst.BaseExpression]:
        for call in loop.scope.calls:
            if call.callee_text == "next" and loop.contains(call.order) and call.node.args:
                return call.node.args[0].value
        return None

    def is_batch_loop(self, loop: Loop) -> bool:
        expr = self.loop_iterable(loop)
        if expr is None:
            return False
        if api.looks_like_loader(dotted_name(expr)):
            return True
        return any(i.torch_name in api.DATALOADER_CLASSES for i in self.instances(expr, loop.scope, loop.start))


_ITERATION_WRAPPERS = ("enumerate", "tqdm", "tqdm.tqdm", "iter", "zip", "tqdm.auto.tqdm", "progress_bar", "pbar")


# Layers whose dropout is off unless asked for, and the position of their `dropout` parameter.
_DROPOUT_DEFAULT_ZERO = {"LSTM": 5, "GRU": 5, "RNN": 6, "MultiheadAttention": 2}


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


def _agree(sources: List[Optional["Source"]]) -> Optional["Source"]:
    if not sources or any(s is None for s in sources):
        return None
    kinds = {s.kind for s in sources}  # type: ignore[union-attr]
    return sources[0] if len(kinds) == 1 else None


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


def bound_argument(call: cst.Call, name: str, index: int) -> Optional[cst.BaseExpression]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if 0 <= index < len(positional) and not any(a.star for a in call.args[:index + 1]):
        return positional[index].value
    return None


def strip_device_moves(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`model.to(device)` -> `model`: device and dtype moves return the same module."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and \
            expr.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half", "bfloat16"):
        expr = expr.func.value
    return expr


def _is_bool(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value in ("True", "False")


def _is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"
