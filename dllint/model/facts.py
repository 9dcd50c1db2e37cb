"""Plain facts collected from one file in one pass: scopes, classes, loops, calls, definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Set, Tuple

import libcst as cst

if TYPE_CHECKING:
    from dllint.model.parts import Parts

# What a function parsed later (see model/parts.py) lacks until something reads it.
LAZY_SCOPE_FIELDS = (
    "node", "params", "loops", "calls", "definitions", "returns", "grad_clears", "aug_assigns", "list_repeats",
    "comprehensions", "nested_functions", "self_attribute_reads", "member_reads", "divisions", "end",
    "self_definitions", "comprehension_loops", "item_assignments",
)


@dataclass(eq=False)
class Loop:
    """A `for` or `while` loop inside one scope."""

    node: cst.CSTNode
    scope: "Scope"
    parent: Optional["Loop"]
    start: int
    end: int = 0
    iter_expr: Optional[cst.BaseExpression] = None
    target_names: Tuple[str, ...] = ()
    under_no_grad: bool = False
    conditions: Tuple[cst.CSTNode, ...] = ()  # the `if` branches around the loop itself

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def contains(self, order: int) -> bool:
        return self.start <= order <= self.end


@dataclass(eq=False)
class Definition:
    """`name = value` (or a parameter, loop target, with-target) at a point of a scope."""

    name: str
    value: Optional[cst.BaseExpression]
    order: int
    kind: str  # assign | augassign | param | for | with | item
    unpack_path: Tuple[int, ...] = ()
    loops: Tuple[Loop, ...] = ()
    node: Optional[cst.CSTNode] = None
    conditions: Tuple[cst.CSTNode, ...] = ()  # the `if` bodies and `else` branches around it


@dataclass(eq=False)
class CallSite:
    """A call expression with the context it runs in."""

    node: cst.Call
    scope: "Scope"
    order: int
    loops: Tuple[Loop, ...]
    no_grad: bool
    conditions: Tuple[cst.CSTNode, ...]
    callee_text: Optional[str]  # dotted text of the callee: "optimizer.step", "F.softmax"
    receiver_text: Optional[str]  # dotted text before the last attribute: "optimizer"
    method: Optional[str]  # last attribute of the callee: "step"


@dataclass(eq=False)
class GradClear:
    """`p.grad = None` or `p.grad.zero_()`: gradients cleared without zero_grad()."""

    node: cst.CSTNode
    order: int
    loops: Tuple[Loop, ...]
    scope: Optional["Scope"] = None
    conditions: Tuple[cst.CSTNode, ...] = ()


@dataclass(eq=False)
class AugAssign:
    node: cst.AugAssign
    target_text: Optional[str]
    order: int
    loops: Tuple[Loop, ...]
    no_grad: bool = False


@dataclass(eq=False)
class Scope:
    """A function body, or the module body ("<module>")."""

    name: str
    qualname: str
    node: cst.CSTNode
    file: "FileFacts"
    cls: Optional["ClassFacts"]
    parent: Optional["Scope"]
    params: List[str] = field(default_factory=list)
    decorators: List[cst.BaseExpression] = field(default_factory=list)
    loops: List[Loop] = field(default_factory=list)
    calls: List[CallSite] = field(default_factory=list)
    definitions: Dict[str, List[Definition]] = field(default_factory=dict)
    # `out[:, 4:] = torch.sigmoid(out[:, 4:])`: the tensor `out` still holds the same object, with the
    # assigned value mixed into part of it (kind "item", keyed by the base name)
    item_assignments: Dict[str, List[Definition]] = field(default_factory=dict)
    returns: List[Tuple[int, Optional[cst.BaseExpression]]] = field(default_factory=list)
    grad_clears: List[GradClear] = field(default_factory=list)
    aug_assigns: List[AugAssign] = field(default_factory=list)
    # `[layer] * n`: a list of one object repeated
    list_repeats: List[Tuple[cst.BinaryOperation, cst.BaseExpression, int]] = field(default_factory=list)
    # `[layer for _ in range(n)]` whose element is a plain name or attribute
    comprehensions: List[Tuple[cst.CSTNode, int]] = field(default_factory=list)
    # `[model(x) for model in models]`: (target names, iterated expression, first order, last order)
    comprehension_loops: List[Tuple[Tuple[str, ...], cst.BaseExpression, int, int]] = field(default_factory=list)
    nested_functions: Dict[str, "Scope"] = field(default_factory=dict)
    # `self.<name>` read anywhere in this scope (not as an assignment target)
    self_attribute_reads: Dict[str, List[cst.Attribute]] = field(default_factory=dict)
    # how many of those reads only reach a member (`self.fc.weight`), not the object itself
    member_reads: Dict[str, int] = field(default_factory=dict)
    # `a / b` where `a` is a call or a name: candidates for a hand-written softmax
    divisions: List[Tuple[cst.BinaryOperation, int]] = field(default_factory=list)
    # `self.<attribute> = value` in this method, in order (a class's attributes are its methods' ones)
    self_definitions: List[Tuple[str, Definition]] = field(default_factory=list)
    start: int = 0
    end: int = 0

    def __getattr__(self, name: str):
        # Reached only for the body of a function whose file was loaded in parts: parse it now.
        if name in LAZY_SCOPE_FIELDS and "file" in self.__dict__:
            self.file.parts.fill(self)
            return self.__dict__[name]
        raise AttributeError(name)

    def iterated_by(self, name: str, order: int) -> Optional[cst.BaseExpression]:
        """What `name` iterates at `order` when it is the variable of a `for` loop or a
        comprehension there (`models` for `model` in `[model(x) for model in models]`)."""
        iterated = None
        for names, expr, start, end in self.comprehension_loops:
            if start <= order <= end and name in names:
                iterated = expr
        if iterated is None:
            for loop in self.loops:
                if loop.contains(order) and name in loop.target_names and loop.iter_expr is not None:
                    iterated = loop.iter_expr
        return iterated

    @property
    def self_name(self) -> Optional[str]:
        """The name of the instance parameter when this scope is a method of a class."""
        if self.cls is not None and self.cls.methods.get(self.name) is self and self.params:
            return self.params[0]
        return None


@dataclass(eq=False)
class ClassFacts:
    name: str
    qualname: str
    node: cst.ClassDef
    file: "FileFacts"
    bases: List[cst.BaseExpression]
    methods: Dict[str, Scope] = field(default_factory=dict)
    order: int = 0
    _attributes: Optional[Dict[str, List[Tuple[Scope, Definition]]]] = field(default=None, repr=False)
    _by_attribute: Dict[str, List[Tuple[Scope, Definition]]] = field(default_factory=dict, repr=False)

    def definitions_of(self, attribute: str) -> List[Tuple[Scope, Definition]]:
        """`self.<attribute> = value` in the methods, in source order (`attributes.get(attribute, [])`,
        parsing only the methods that can assign it)."""
        found = self._by_attribute.get(attribute)
        if found is None:
            if self._attributes is not None or self.file.parts is None:
                found = self.attributes.get(attribute, [])
            else:
                self.file.parts.fill_class(self, attribute)
                pending = self.file.parts.pending
                found = [(method, definition) for method in self.methods.values() if id(method) not in pending
                         for name, definition in method.self_definitions if name == attribute]
            self._by_attribute[attribute] = found
        return found

    @property
    def attributes(self) -> Dict[str, List[Tuple[Scope, Definition]]]:
        """self.<attr> = value, from every method (mostly __init__), in source order."""
        if self._attributes is None:
            found: Dict[str, List[Tuple[Scope, Definition]]] = {}
            for method in self.methods.values():
                for name, definition in method.self_definitions:
                    found.setdefault(name, []).append((method, definition))
            self._attributes = found
        return self._attributes


@dataclass(eq=False)
class FileFacts:
    """Everything the one pass collected from one file."""

    path: str
    module_name: str
    source: str
    tree: cst.Module
    index: int = -1  # position in the run's catalogue
    aliases: Dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    module_scope: Optional[Scope] = None
    scopes: List[Scope] = field(default_factory=list)
    classes: Dict[str, ClassFacts] = field(default_factory=dict)
    functions: Dict[str, Scope] = field(default_factory=dict)  # top-level functions by name
    all_class_list: List[ClassFacts] = field(default_factory=list)
    # attribute names read on objects other than `self` (`model.classifier`): used from outside the class
    foreign_attribute_names: Set[str] = field(default_factory=set)
    # ids of `if`/`else` bodies that end in continue/break/return/raise
    exiting_branches: Set[int] = field(default_factory=set)
    # id(else branch) -> the test of its `if`: the branch runs when that test is false
    else_tests: Dict[int, cst.BaseExpression] = field(default_factory=dict)
    # attributes and keywords that look like a misspelt `requires_grad`
    requires_grad_typos: List[Tuple[cst.CSTNode, str, Scope]] = field(default_factory=list)
    # calls by the last name of their callee, built on first use (finding a function's callers)
    calls_by_spelling: Optional[Dict[str, List[CallSite]]] = None
    # set when the file was loaded in parts: function bodies are parsed when first read
    parts: Optional["Parts"] = None

    # -- queries that read the whole file; a file loaded in parts parses only what they need --
    def complete(self) -> "FileFacts":
        if self.parts is not None:
            self.parts.fill_all()
        return self

    def scopes_mentioning(self, words) -> List[Scope]:
        """Every scope that can contain one of `words` (all scopes, in a file parsed whole)."""
        if self.parts is None:
            return self.scopes
        self.parts.fill_mentioning(words)
        # The functions still unparsed cannot contain the words.
        return [scope for scope in self.scopes if id(scope) not in self.parts.pending]

    def classes_mentioning(self, word: str) -> List[ClassFacts]:
        if self.parts is not None:
            self.parts.fill_mentioning((word,))
        return self.all_class_list

    def reads_attribute(self, attribute: str) -> bool:
        """Whether `.attribute` is read on some object other than `self` in this file."""
        if self.parts is not None:
            self.parts.fill_mentioning((attribute,))
        return attribute in self.foreign_attribute_names

    def class_scopes(self, cls: ClassFacts) -> Iterator[Scope]:
        """The methods of `cls` and the functions nested in them."""
        if self.parts is not None:
            self.parts.fill_class(cls)
        return (scope for scope in self.scopes if scope.cls is cls)
