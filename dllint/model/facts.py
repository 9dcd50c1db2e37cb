"""Plain facts collected from one file in one pass: scopes, classes, loops, calls, definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import libcst as cst


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
    kind: str  # assign | augassign | param | for | with
    unpack_path: Tuple[int, ...] = ()
    loops: Tuple[Loop, ...] = ()
    node: Optional[cst.CSTNode] = None


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
    returns: List[Tuple[int, Optional[cst.BaseExpression]]] = field(default_factory=list)
    grad_clears: List[GradClear] = field(default_factory=list)
    aug_assigns: List[AugAssign] = field(default_factory=list)
    # `[layer] * n`: a list of one object repeated
    list_repeats: List[Tuple[cst.BinaryOperation, cst.BaseExpression, int]] = field(default_factory=list)
    # `[layer for _ in range(n)]` whose element is a plain name or attribute
    comprehensions: List[Tuple[cst.CSTNode, int]] = field(default_factory=list)
    nested_functions: Dict[str, "Scope"] = field(default_factory=dict)
    # `self.<name>` read anywhere in this scope (not as an assignment target)
    self_attribute_reads: Dict[str, List[cst.Attribute]] = field(default_factory=dict)
    # how many of those reads only reach a member (`self.fc.weight`), not the object itself
    member_reads: Dict[str, int] = field(default_factory=dict)
    # `a / b` where `a` is a call or a name: candidates for a hand-written softmax
    divisions: List[Tuple[cst.BinaryOperation, int]] = field(default_factory=list)
    start: int = 0
    end: int = 0

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
    # self.<attr> = value, from every method (mostly __init__)
    attributes: Dict[str, List[Tuple[Scope, Definition]]] = field(default_factory=dict)


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
    # attributes and keywords that look like a misspelt `requires_grad`
    requires_grad_typos: List[Tuple[cst.CSTNode, str, Scope]] = field(default_factory=list)
    # calls by the last name of their callee, built on first use (finding a function's callers)
    calls_by_spelling: Optional[Dict[str, List[CallSite]]] = None
