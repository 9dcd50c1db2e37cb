"""Where a value comes from: the definitions that reach a name, the expressions that produce a value
(through assignments, `self.x`, helpers' returns and the arguments callers pass), the project code a
call runs, and the classes an object may be an instance of."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Set, Tuple, Union

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.call_arguments import bound_argument
from dllint.model.facts import CallSite, ClassFacts, Definition, Scope
from dllint.model.project import Target, instance_name


MAX_DEPTH = 8


MAX_CALLERS = 8  # call sites followed backwards from one parameter


ORIGIN_BUDGET = 256


# A step of an origins walk: an expression to follow, its scope and point, the path into its value,
# and whether what it produces is mixed into the value (assigned into part of it).
_Step = Tuple[Optional[cst.BaseExpression], Scope, int, Tuple[int, ...], bool]


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
class Instance:
    """What an object is: a project class, a torch class (qualified), or unknown."""

    project_class: Optional[ClassFacts] = None
    torch_class: Optional[str] = None
    ctor: Optional[cst.Call] = None
    scope: Optional[Scope] = None

    @property
    def torch_name(self) -> Optional[str]:
        return api.last_component(self.torch_class) if self.torch_class else None


class ValueOrigins:
    """Origins of values and what objects are (part of Analysis)."""

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
        The walk is depth-first; what one expression leads to (its steps) is worked out once per
        analysis, when a walk first reaches it, and replayed by later walks, which still visit, in the
        same order, under the same budget and depth, what the first one did: only the reasoning about
        each expression is shared.
        """
        walk = _Walk(items, any_branch)
        if expr is None or depth > MAX_DEPTH or not walk.enter((id(expr), path)):
            return
        # A frame: the steps of an expression still to take, its depth, whether what it yields is mixed in.
        stack = [(self._steps(expr, scope, order, path, walk), depth, False)]
        while stack:
            steps, depth, mixed = stack[-1]
            step = next(steps, None)
            if step is None:
                stack.pop()
            elif isinstance(step, Origin):
                yield replace(step, mixed_in=True) if mixed else step
            else:
                expr, scope, order, path, mixed_in = step
                if expr is not None and depth < MAX_DEPTH and walk.enter((id(expr), path)):
                    stack.append((self._steps(expr, scope, order, path, walk), depth + 1, mixed or mixed_in))

    def _steps(self, expr: cst.BaseExpression, scope: Scope, order: int, path: Tuple[int, ...],
               walk: "_Walk") -> Iterator[Union[Origin, "_Step"]]:
        """An expression's steps, worked out once per analysis. Not kept when they read a callee still
        being resolved (None for now): a later walk reads its answer."""
        key = (id(expr), id(scope), order, path, walk.items, walk.any_branch)
        steps = self._origin_steps.get(key)
        if steps is None:
            provisional = [False]
            steps = list(self._work_out_steps(expr, scope, order, path, walk, provisional))
            if not provisional[0]:
                self._origin_steps[key] = steps
        return iter(steps)

    def _work_out_steps(self, expr: cst.BaseExpression, scope: Scope, order: int, path: Tuple[int, ...],
                        walk: "_Walk", provisional: List[bool]) -> Iterator[Union[Origin, "_Step"]]:
        """What the value of `expr` (at `path`) comes from: Origins it is produced by here, and
        (expression, scope, order, path, mixed in) steps to follow one level deeper."""
        if isinstance(expr, cst.Name):
            if expr.value in ("None", "True", "False"):
                yield Origin(expr, scope, order, path)
                return
            reaching = self.reaching_on_any_branch(scope, expr.value, order) if walk.any_branch else \
                self.reaching(scope, expr.value, order)
            for def_scope, definition in reaching:
                if definition.kind == "param":
                    yield from self._parameter_steps(def_scope, definition, path)
                elif definition.kind in ("assign", "with") and definition.value is not None:
                    yield definition.value, def_scope, definition.order, definition.unpack_path + path, False
            if walk.items and not path:
                for item_scope, item in self._item_assignments_between(reaching, scope, expr.value, order):
                    yield item.value, item_scope, item.order, (), True
            return
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
            self_name = instance_name(scope)
            cls = scope.cls
            if cls is not None and expr.value.value == self_name:
                for attr_scope, definition in self.attribute_definitions(cls, expr.attr.value):
                    if definition.value is not None:
                        yield definition.value, attr_scope, definition.order, definition.unpack_path + path, False
                return
        if isinstance(expr, cst.IfExp):
            # `net = DDP(net) if distributed else net`: either branch may produce the value.
            yield expr.body, scope, order, path, False
            yield expr.orelse, scope, order, path, False
            return
        if isinstance(expr, (cst.Tuple, cst.List)) and path:
            # A key (`arch["pi"]`) into a list or tuple names no element: the value is a dict elsewhere.
            elements = [e.value for e in expr.elements]
            if isinstance(path[0], int) and path[0] < len(elements):
                yield elements[path[0]], scope, order, path[1:], False
            return
        if isinstance(expr, cst.Call) and isinstance(expr.func, (cst.Name, cst.Attribute)):
            passed = self._returned_argument(expr, scope, path)
            if passed is not None:
                # `model, optimizer = fabric.setup(model, optimizer)`: the same objects, wrapped.
                yield passed[0], scope, order, passed[1], False
                return
            call = self.call_site(expr, scope)
            if call is not None and id(call) in self._callees_resolving:
                provisional[0] = True
                self._provisional_reads += 1
            target = self.callee(call) if call is not None else None
            if isinstance(target, Scope) and target.returns and target.name != "__init__":
                # A helper's result is what its return statements produce.
                for return_order, value in target.returns:
                    yield value, target, return_order, path, False
                return
        if isinstance(expr, cst.DictComp) and path and isinstance(path[0], str):
            # `{task: DistributedSampler(ds) for task, ds in sets.items()}["detection"]`: every entry is the
            # comprehension's value.
            yield expr.value, scope, order, path[1:], False
            return
        if isinstance(expr, cst.Dict) and path and isinstance(path[0], str):
            for element in expr.elements:
                if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString) and \
                        element.key.evaluated_value == path[0]:
                    yield element.value, scope, order, path[1:], False
            return
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
            index = expr.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer):
                yield expr.value, scope, order, (int(index.value.value),) + path, False
                return
            if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                # outputs["probs"] where forward returns {"logits": ..., "probs": ...}
                key = index.value.evaluated_value
                if isinstance(key, str):
                    yield expr.value, scope, order, (key,) + path, False
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
            self._callees_resolving.add(id(call))
            try:
                self._memo[key] = self._instance_callee(call)
            finally:
                self._callees_resolving.discard(id(call))
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

    def _parameter_steps(self, scope: Scope, definition: Definition,
                         path: Tuple[int, ...]) -> Iterator["_Step"]:
        """A parameter's default, and the arguments that call sites in the project pass for it."""
        if definition.value is not None:
            yield definition.value, scope, scope.start, path, False
        try:
            index = scope.params.index(definition.name)
        except ValueError:
            return
        for call in self.project.callers(scope):
            offset = 1 if scope.self_name is not None else 0
            argument = bound_argument(call.node, definition.name, index - offset)
            if argument is not None:
                yield argument, call.scope, call.order, path, False

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
        if depth > MAX_DEPTH:
            return []
        if depth == 1:
            return self._instances_of_origins(expr, scope, order, depth, any_branch)
        # Deeper, what an object moved or wrapped earlier was (`model = model.to(device)`): asked again
        # by every query through it. The answer is kept unless it read a callee still being resolved.
        key = (id(expr), id(scope), order, any_branch, depth)
        cached = self._moved_instances.get(key)
        if cached is None:
            provisional = self._provisional_reads
            cached = self._instances_of_origins(expr, scope, order, depth, any_branch)
            if self._provisional_reads == provisional:
                self._moved_instances[key] = cached
        return cached

    def _instances_of_origins(self, expr: Optional[cst.BaseExpression], scope: Scope, order: int,
                              depth: int, any_branch: bool) -> List[Instance]:
        found: List[Instance] = []
        for origin in self.origins(expr, scope, order, any_branch=any_branch):
            if origin.path:
                continue
            built = self._built_instance(origin)
            if isinstance(built, Instance):
                found.append(built)
            elif built is not None:
                found.extend(self.instances(built, origin.scope, origin.order, depth + 1, any_branch))
        return found

    def _built_instance(self, origin: Origin) -> Union[None, Instance, cst.BaseExpression]:
        """The object a value (an origin) gives: an Instance it builds, or the expression whose object it
        moves or wraps (`model.to(device)`, `DDP(model)`); None when it builds nothing known to be
        an object. Worked out once per value: the same values end many queries."""
        key = (id(origin.expr), id(origin.scope))
        if key in self._built:
            return self._built[key]
        built: Union[None, Instance, cst.BaseExpression] = None
        value = origin.expr
        # `model = Net().to(device)`, `model = DDP(model)`: look through wrappers.
        moved = False
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                value.func.attr.value in ("to", "cuda", "cpu", "float", "double", "half", "train", "eval"):
            value, moved = value.func.value, True
        if moved and not isinstance(value, cst.Call):
            built = value  # `model = model.to(device)`: the object the name held before.
        elif isinstance(value, cst.Call):
            wrapped = self._unwrap_parallel(value, origin.scope)
            if wrapped is not None:
                built = wrapped
            else:
                target = self.project.resolve_name(value.func, origin.scope.file) \
                    if isinstance(value.func, (cst.Name, cst.Attribute)) else None
                if isinstance(target, ClassFacts):
                    built = Instance(project_class=target, ctor=value, scope=origin.scope)
                else:
                    qualified = self.qualify(value.func, origin.scope)
                    if api.is_torch_name(qualified):
                        built = Instance(torch_class=qualified, ctor=value, scope=origin.scope)
                    else:
                        built = Instance(ctor=value, scope=origin.scope)
        self._built[key] = built
        return built

    def _unwrap_parallel(self, call: cst.Call, scope: Scope) -> Optional[cst.BaseExpression]:
        name = dotted_name(call.func)
        if name and api.last_component(name) in ("DataParallel", "DistributedDataParallel", "DDP", "compile",
                                                 "FullyShardedDataParallel", "FSDP") and call.args:
            return call.args[0].value
        return None

    def call_site(self, node: cst.CSTNode, scope: Scope) -> Optional[CallSite]:
        index = self._call_index.get(id(scope))
        if index is None:
            index = {id(c.node): c for c in scope.calls}
            self._call_index[id(scope)] = index
        return index.get(id(node))
