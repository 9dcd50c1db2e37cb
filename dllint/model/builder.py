"""The one lean pass over a libcst tree that collects a file's facts.

libcst's metadata providers each rebuild the whole tree; this pass walks node
fields directly, once, and records only what the checks ask about.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, List, Optional, Tuple

import libcst as cst

from dllint.model.facts import (
    LAZY_SCOPE_FIELDS,
    AugAssign,
    CallSite,
    ClassFacts,
    Definition,
    FileFacts,
    GradClear,
    Loop,
    Scope,
)
from dllint.model.torch_api import IMPLICIT_ALIASES, NO_GRAD_CONTEXTS, REQUIRES_GRAD_TYPOS, last_component

# Fields that only hold whitespace, comments or punctuation: never worth a visit.
_SKIPPED_FIELDS = {
    "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators", "header",
    "footer", "colon", "equal", "dot", "operator", "trailing_whitespace", "newline", "asynchronous",
    "star", "whitespace_after_star", "whitespace_after_arg", "whitespace_before_colon",
}
_CHILD_FIELDS: Dict[type, Tuple[str, ...]] = {}


def _child_fields(node_type: type) -> Tuple[str, ...]:
    names = _CHILD_FIELDS.get(node_type)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(node_type)
            if f.name not in _SKIPPED_FIELDS and not f.name.startswith("whitespace")
        )
        _CHILD_FIELDS[node_type] = names
    return names


# Whether nodes of a type are Attributes (1), Names (2) or neither (0): libcst's node classes are
# abstract base classes, and isinstance() through them costs more than the rest of dotted_name.
_NAME_PARTS: Dict[type, int] = {}


def _name_part(node_type: type, node: object) -> int:
    kind = _NAME_PARTS[node_type] = 1 if isinstance(node, cst.Attribute) else 2 if isinstance(node, cst.Name) else 0
    return kind


def dotted_name(node: Optional[cst.CSTNode]) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: List[str] = []
    while True:
        node_type = type(node)
        kind = _NAME_PARTS.get(node_type)
        if kind is None:
            kind = _name_part(node_type, node)
        if kind == 1:
            parts.append(node.attr.value)  # type: ignore[union-attr]
            node = node.value  # type: ignore[union-attr]
        elif kind == 2:
            parts.append(node.value)  # type: ignore[union-attr]
            return parts[0] if len(parts) == 1 else ".".join(reversed(parts))
        else:
            return None


def descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """A node and everything below it (for small expressions such as an `if` test)."""
    yield node
    for child in node.children:
        yield from descendants(child)


def _module_name_of(node: Optional[cst.BaseExpression]) -> str:
    return dotted_name(node) or ""


# Orders number events in source order within a scope. The body of a function defined at the top
# of the module or of a top-level class (a "unit") is numbered between two steps of its enclosing
# code, so the numbers of everything else do not depend on whether units were parsed.
ORDER_STRIDE = 1 << 32


class OutlineMismatch(Exception):
    """The skeleton's functions do not match the file's outline; the file is parsed whole instead."""


class _Builder:
    def __init__(self, facts: FileFacts, stubs=None) -> None:
        self.facts = facts
        self.order = 0
        self.step = ORDER_STRIDE
        self.top_statement: Optional[cst.CSTNode] = None
        # Skeleton mode (model/parts.py): the outline's units, in source order; their bodies are left for later.
        self.stubs = stubs
        self.record_imports = True
        self.scope: Scope = None  # type: ignore[assignment]
        self.cls: Optional[ClassFacts] = None
        self.loops: Tuple[Loop, ...] = ()
        self.no_grad = 0
        # `stack.enter_context(torch.no_grad())` entries still open: they end with the enclosing `with`.
        self.entered_no_grad = 0
        self.conditions: Tuple[cst.CSTNode, ...] = ()
        self._instance_names: Dict[int, Optional[str]] = {}

    # -- entry -----------------------------------------------------------------
    def build(self) -> None:
        module = self.facts.tree
        scope = Scope("<module>", "<module>", module, self.facts, None, None)
        self.facts.module_scope = scope
        self.facts.scopes.append(scope)
        self.scope = scope
        for statement in module.body:
            self.top_statement = statement
            self.visit(statement)
        scope.end = self.order

    def tick(self) -> int:
        self.order += self.step
        return self.order

    # -- generic traversal -----------------------------------------------------
    def visit(self, node: cst.CSTNode) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)
        else:
            self.visit_children(node)

    def visit_children(self, node: cst.CSTNode) -> None:
        for name in _child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.visit(value)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self.visit(item)

    def visit_all(self, nodes) -> None:
        for node in nodes:
            self.visit(node)

    # -- imports -----------------------------------------------------------------
    def on_import(self, node: cst.Import) -> None:
        if self.record_imports:
            record_import(self.facts.aliases, [(_module_name_of(alias.name), _as_name(alias)) for alias in node.names])

    def on_import_from(self, node: cst.ImportFrom) -> None:
        if self.record_imports and not isinstance(node.names, cst.ImportStar):
            record_import_from(self.facts.aliases, "." * len(node.relative) + _module_name_of(node.module),
                               [(_module_name_of(alias.name), _as_name(alias)) for alias in node.names])

    # -- definitions -----------------------------------------------------------
    def define(self, target: cst.BaseExpression, value: Optional[cst.BaseExpression], kind: str,
               order: int, path: Tuple[int, ...] = (), node: Optional[cst.CSTNode] = None) -> None:
        if isinstance(target, cst.Name):
            definition = Definition(target.value, value, order, kind, path, self.loops, node, self.conditions)
            self.scope.definitions.setdefault(target.value, []).append(definition)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for index, element in enumerate(target.elements):
                inner = element.value
                if isinstance(inner, cst.StarredElement):
                    continue
                self.define(inner, value, kind, order, path + (index,), node)
        elif isinstance(target, cst.Attribute):
            self_name = self.scope.self_name
            if (self.cls is not None and self_name is not None and isinstance(target.value, cst.Name)
                    and target.value.value == self_name):
                definition = Definition(target.attr.value, value, order, kind, path, self.loops, node)
                self.scope.self_definitions.append((target.attr.value, definition))
            if target.attr.value in REQUIRES_GRAD_TYPOS:
                self.facts.requires_grad_typos.append((target.attr, target.attr.value, self.scope))
            if target.attr.value == "grad" and isinstance(value, cst.Name) and value.value == "None":
                self.scope.grad_clears.append(GradClear(target, order, self.loops, self.scope, self.conditions))
            if not path:
                self.visit(target.value)
        elif isinstance(target, cst.StarredElement):
            self.define(target.value, value, kind, order, path, node)
        else:
            self.visit(target)

    def on_assign(self, node: cst.Assign) -> None:
        self.visit(node.value)
        order = self.tick()
        for target in node.targets:
            self.define(target.target, node.value, "assign", order, node=node)
            base = target.target.value if isinstance(target.target, cst.Subscript) else None
            if isinstance(base, cst.Name):
                self.scope.item_assignments.setdefault(base.value, []).append(
                    Definition(base.value, node.value, order, "item", (), self.loops, node, self.conditions))

    def on_ann_assign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self.define(node.target, node.value, "assign", self.tick(), node=node)

    def on_aug_assign(self, node: cst.AugAssign) -> None:
        self.visit(node.value)
        order = self.tick()
        self.scope.aug_assigns.append(AugAssign(node, dotted_name(node.target), order, self.loops, self.no_grad > 0))
        if isinstance(node.target, cst.Name):
            self.define(node.target, node, "augassign", order, node=node)
        else:
            self.visit(node.target)

    def on_named_expr(self, node: cst.NamedExpr) -> None:
        self.visit(node.value)
        self.define(node.target, node.value, "assign", self.tick(), node=node)

    # -- calls -----------------------------------------------------------------
    def on_call(self, node: cst.Call) -> None:
        callee = node.func
        callee_text = dotted_name(callee)
        receiver_text = method = None
        if isinstance(callee, cst.Attribute):
            method = callee.attr.value
            receiver_text = dotted_name(callee.value)
            if method == "zero_" and isinstance(callee.value, cst.Attribute) and callee.value.attr.value == "grad":
                self.scope.grad_clears.append(
                    GradClear(node, self.order + self.step, self.loops, self.scope, self.conditions))
        self.visit(callee)
        for arg in node.args:
            self.visit(arg.value)
            # Tensor._make_subclass really spells its keyword `require_grad`.
            if arg.keyword is not None and arg.keyword.value in REQUIRES_GRAD_TYPOS and method != "_make_subclass":
                self.facts.requires_grad_typos.append((arg.keyword, arg.keyword.value, self.scope))
        self.scope.calls.append(CallSite(node, self.scope, self.tick(), self.loops, self.no_grad > 0,
                                         self.conditions, callee_text, receiver_text, method))
        if method == "enter_context" and node.args and self.is_no_grad_context(node.args[0].value):
            self.no_grad += 1
            self.entered_no_grad += 1

    # -- control flow ----------------------------------------------------------
    def _open_loop(self, node: cst.CSTNode, iter_expr: Optional[cst.BaseExpression]) -> Loop:
        loop = Loop(node, self.scope, self.loops[-1] if self.loops else None, self.tick(),
                    iter_expr=iter_expr, under_no_grad=self.no_grad > 0, conditions=self.conditions)
        self.scope.loops.append(loop)
        return loop

    def on_for(self, node: cst.For) -> None:
        self.visit(node.iter)
        loop = self._open_loop(node, node.iter)
        outer = self.loops
        self.loops = outer + (loop,)
        self.define(node.target, None, "for", loop.start, node=node)
        loop.target_names = tuple(_names_in(node.target))
        self.visit(node.body)
        loop.end = self.tick()
        self.loops = outer
        if node.orelse is not None:
            self.visit(node.orelse)

    def on_while(self, node: cst.While) -> None:
        loop = self._open_loop(node, None)
        outer = self.loops
        self.loops = outer + (loop,)
        self.visit(node.test)
        self.visit(node.body)
        loop.end = self.tick()
        self.loops = outer
        if node.orelse is not None:
            self.visit(node.orelse)

    def on_if(self, node: cst.If) -> None:
        self.visit(node.test)
        if _ends_by_leaving(node.body):
            self.facts.exiting_branches.add(id(node))
        if isinstance(node.orelse, cst.Else) and _ends_by_leaving(node.orelse.body):
            self.facts.exiting_branches.add(id(node.orelse))
        outer = self.conditions
        self.conditions = outer + (node,)
        self.visit(node.body)
        self.conditions = outer
        if node.orelse is not None:
            self.facts.else_tests[id(node.orelse)] = node.test
            self.conditions = outer + (node.orelse,)
            self.visit(node.orelse)
            self.conditions = outer

    def on_with(self, node: cst.With) -> None:
        disables_grad = False
        for item in node.items:
            self.visit(item.item)
            if self.is_no_grad_context(item.item):
                disables_grad = True
            if item.asname is not None:
                self.define(item.asname.name, item.item, "with", self.tick(), node=node)
        self.no_grad += disables_grad
        entered = self.entered_no_grad
        self.visit(node.body)
        self.no_grad -= disables_grad + self.entered_no_grad - entered
        self.entered_no_grad = entered

    def is_no_grad_context(self, expr: cst.BaseExpression) -> bool:
        if isinstance(expr, cst.Call):
            callee = dotted_name(expr.func)
            if callee is None:
                return False
            name = last_component(callee)
            if name in NO_GRAD_CONTEXTS:
                return True
            if name == "set_grad_enabled" and expr.args:
                value = expr.args[0].value
                return isinstance(value, cst.Name) and value.value == "False"
        return False

    def on_attribute(self, node: cst.Attribute) -> None:
        name = node.attr.value
        base = node.value
        if isinstance(base, cst.Name) and base.value == self.instance_name:
            self.scope.self_attribute_reads.setdefault(name, []).append(node)
        else:
            if isinstance(base, cst.Attribute) and isinstance(base.value, cst.Name) and \
                    base.value.value == self.instance_name:
                self.scope.member_reads[base.attr.value] = self.scope.member_reads.get(base.attr.value, 0) + 1
            self.facts.foreign_attribute_names.add(name)
            self.visit(base)
        if name in REQUIRES_GRAD_TYPOS:
            self.facts.requires_grad_typos.append((node.attr, name, self.scope))

    @property
    def instance_name(self) -> Optional[str]:
        key = id(self.scope)
        if key not in self._instance_names:
            scope: Optional[Scope] = self.scope
            while scope is not None and scope.self_name is None:
                scope = scope.parent
            self._instance_names[key] = scope.self_name if scope is not None else None
        return self._instance_names[key]

    def on_binary_operation(self, node: cst.BinaryOperation) -> None:
        self.visit(node.left)
        self.visit(node.right)
        if isinstance(node.operator, cst.Divide) and isinstance(node.left, (cst.Call, cst.Name)):
            self.scope.divisions.append((node, self.tick()))
        if isinstance(node.operator, cst.Multiply):
            for side in (node.left, node.right):
                if isinstance(side, cst.List) and len(side.elements) == 1:
                    self.scope.list_repeats.append((node, side.elements[0].value, self.tick()))

    def on_comprehension(self, node) -> None:
        start = self.tick()
        self.visit_children(node)
        end = self.tick()
        for_in = node.for_in
        while for_in is not None:
            self.scope.comprehension_loops.append((tuple(_names_in(for_in.target)), for_in.iter, start, end))
            for_in = for_in.inner_for_in
        if isinstance(node.elt, (cst.Name, cst.Attribute)):
            self.scope.comprehensions.append((node, self.tick()))

    def on_return(self, node: cst.Return) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.scope.returns.append((self.tick(), node.value))

    # -- scopes ----------------------------------------------------------------
    def on_class(self, node: cst.ClassDef) -> None:
        self.visit_all(d.decorator for d in node.decorators)
        for base in node.bases:
            self.visit(base.value)
        prefix = "" if self.scope.parent is None and self.cls is None else f"{self.scope.qualname}."
        cls = ClassFacts(node.name.value, prefix + node.name.value, node, self.facts,
                         [arg.value for arg in node.bases if arg.keyword is None], order=self.tick())
        if self.scope.parent is None and self.cls is None:
            self.facts.classes[cls.name] = cls
        self.facts.all_class_list.append(cls)
        outer_cls, outer_loops = self.cls, self.loops
        self.cls, self.loops = cls, ()
        if node is self.top_statement and isinstance(node.body, cst.IndentedBlock):
            for statement in node.body.body:  # its methods are units
                self.top_statement = statement
                self.visit(statement)
        else:
            self.visit(node.body)
        self.cls, self.loops = outer_cls, outer_loops

    def on_function(self, node: cst.FunctionDef) -> None:
        self.visit_all(d.decorator for d in node.decorators)
        parent = self.scope
        in_class_body = self.cls is not None and (parent.cls is not self.cls or parent.node is self.cls.node)
        qual_prefix = f"{self.cls.qualname}." if in_class_body and self.cls else (
            "" if parent.parent is None else f"{parent.qualname}.")
        scope = Scope(node.name.value, qual_prefix + node.name.value, node, self.facts,
                      self.cls, parent, decorators=[d.decorator for d in node.decorators])
        if in_class_body and self.cls is not None:
            self.cls.methods.setdefault(node.name.value, scope)
        elif parent.parent is None and self.cls is None:
            self.facts.functions[node.name.value] = scope
        else:
            parent.nested_functions[node.name.value] = scope
        self.facts.scopes.append(scope)
        if node is not self.top_statement:
            self.function_body(scope, node)
            return
        # A unit takes one step of its enclosing code, so units' numbers never overlap.
        saved_order = self.tick()
        if self.stubs is not None:
            self._stub(scope, node)
        else:
            self.step = 1
            self.function_body(scope, node)
            self.step = ORDER_STRIDE
        self.order = saved_order

    def _stub(self, scope: Scope, node: cst.FunctionDef) -> None:
        """A unit left for later: known by name, its body parsed when something reads it."""
        unit = next(self.stubs, None)
        if unit is None or unit.name != node.name.value:
            raise OutlineMismatch(node.name.value)
        scope.start = self.order + 1  # as function_body would number it
        for name in LAZY_SCOPE_FIELDS:
            del scope.__dict__[name]
        self.facts.parts.pending[id(scope)] = (scope, unit)
        # The body's imports name things for the whole file, at this point of it.
        for module, names in unit.imports:
            if module is None:
                record_import(self.facts.aliases, names)
            else:
                record_import_from(self.facts.aliases, module, names)

    def function_body(self, scope: Scope, node: cst.FunctionDef) -> None:
        """Parameters and body of a function, into `scope` (also when a unit is filled in later)."""
        saved = (self.scope, self.loops, self.no_grad, self.entered_no_grad, self.conditions)
        self.scope, self.loops, self.no_grad, self.entered_no_grad, self.conditions = scope, (), 0, 0, ()
        scope.start = self.tick()
        params = node.params
        for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
            scope.params.append(param.name.value)
            self.define(param.name, param.default, "param", scope.start, node=param)
            if param.default is not None:
                self.visit(param.default)
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                scope.params.append(star.name.value)
        if any(self.is_no_grad_decorator(d) for d in scope.decorators):
            self.no_grad = 1
        self.visit(node.body)
        scope.end = self.tick()
        self.scope, self.loops, self.no_grad, self.entered_no_grad, self.conditions = saved

    def is_no_grad_decorator(self, expr: cst.BaseExpression) -> bool:
        if self.is_no_grad_context(expr):
            return True
        if isinstance(expr, cst.Call):
            expr = expr.func  # a factory of the context: @smart_inference_mode()
        callee = dotted_name(expr)
        # Project wrappers are named after what they wrap: @smart_inference_mode, @torch_no_grad.
        return callee is not None and last_component(callee).endswith(tuple(NO_GRAD_CONTEXTS))


def _as_name(alias) -> Optional[str]:
    return alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else None


def record_import(aliases: Dict[str, str], names) -> None:
    """`import a.b` binds `a`; `import a.b as c` binds `c` to a.b. `names`: (dotted name, as-name) pairs."""
    for full, local in names:
        if local is not None:
            aliases[local] = full
        else:
            root = full.split(".", 1)[0]
            aliases[root] = root


def record_import_from(aliases: Dict[str, str], module: str, names) -> None:
    """`from module import name [as local]`; `module` keeps its leading dots."""
    joiner = "" if module.endswith(".") else "."
    for name, local in names:
        aliases[local or name] = f"{module}{joiner}{name}" if module else name


def _ends_by_leaving(block: cst.BaseSuite) -> bool:
    """Does the block end in continue, break, return or raise (so what follows it is skipped)?"""
    body = getattr(block, "body", ())
    if not body:
        return False
    last = body[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return bool(last.body) and isinstance(last.body[-1], (cst.Continue, cst.Break, cst.Return, cst.Raise))
    return isinstance(last, (cst.Continue, cst.Break, cst.Return, cst.Raise))


def _names_in(target: cst.BaseExpression):
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _names_in(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _names_in(target.value)


_HANDLERS = {
    cst.Import: _Builder.on_import,
    cst.ImportFrom: _Builder.on_import_from,
    cst.Assign: _Builder.on_assign,
    cst.AnnAssign: _Builder.on_ann_assign,
    cst.AugAssign: _Builder.on_aug_assign,
    cst.NamedExpr: _Builder.on_named_expr,
    cst.Call: _Builder.on_call,
    cst.For: _Builder.on_for,
    cst.While: _Builder.on_while,
    cst.If: _Builder.on_if,
    cst.With: _Builder.on_with,
    cst.Return: _Builder.on_return,
    cst.BinaryOperation: _Builder.on_binary_operation,
    cst.Attribute: _Builder.on_attribute,
    cst.ListComp: _Builder.on_comprehension,
    cst.GeneratorExp: _Builder.on_comprehension,
    cst.ClassDef: _Builder.on_class,
    cst.FunctionDef: _Builder.on_function,
    # Nothing inside these matters to any check.
    cst.SimpleString: lambda self, node: None,
    # `f"acc {evaluate(model):.3f} " f"loss {val_loss:.3f}"`: the parts may be f-strings that call things.
    cst.ConcatenatedString: lambda self, node: self.visit_all((node.left, node.right)),
    cst.FormattedString: lambda self, node: self.visit_all(
        p.expression for p in node.parts if isinstance(p, cst.FormattedStringExpression)),
    cst.Integer: lambda self, node: None,
    cst.Float: lambda self, node: None,
    cst.Name: lambda self, node: None,
    cst.EmptyLine: lambda self, node: None,
    cst.Comment: lambda self, node: None,
    cst.Newline: lambda self, node: None,
    cst.Pass: lambda self, node: None,
}


def build_file_facts(path: str, module_name: str, source: str, tree: cst.Module, units=None, lines=None,
                     skeleton_chars: int = 0) -> FileFacts:
    """Collect the facts of one parsed file. With `units` (model/parts.py), `tree` is the skeleton."""
    facts = FileFacts(path=path, module_name=module_name, source=source, tree=tree)
    stubs = None
    if units is not None:
        from dllint.model.parts import Parts

        facts.parts = Parts(facts, lines, units, skeleton_chars)
        stubs = iter(units)
    _Builder(facts, stubs).build()
    if stubs is not None and next(stubs, None) is not None:
        raise OutlineMismatch(path)
    for name, qualified in IMPLICIT_ALIASES.items():
        if name not in facts.aliases and name not in facts.module_scope.definitions:
            facts.aliases.setdefault(name, qualified)
    return facts
