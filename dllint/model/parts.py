"""Files loaded in parts: a skeleton now, each function body when something first reads it.

A file is parsed whole when it is linted. A file that is only consulted (it defines a model class
or a helper, it imports a function whose callers are wanted) usually needs a few of its functions:
parsing all of it cost a worker as much as its own files did. Such a file is parsed as a skeleton,
its source with the body of every "unit" (a function at the top of the module or of a top-level
class) replaced by a stub on the same line, so every other node keeps its position. A unit's body
is parsed from its own lines when a query first reads its scope, and built into the scope object
the skeleton made, so the facts are the same objects, and the same facts, as a whole parse gives.

The outline (where units start and end, which modules their bodies import) comes from the
`ast` tree that the syntax check builds anyway.
"""

from __future__ import annotations

import ast
import bisect
import functools
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import libcst as cst

from dllint.lines import line_starts, split_lines
from dllint.model.facts import LAZY_SCOPE_FIELDS, FileFacts, Scope
from dllint.model.import_outline import block_statements


@functools.lru_cache(maxsize=4096)
def _word_pattern(word: str) -> "re.Pattern[str]":
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)")


def mentions_word(text: str, word: str, start: int = 0, end: Optional[int] = None) -> bool:
    """Whether `word` occurs in `text[start:end]` as a whole identifier. Searching a function's
    text each time costs microseconds; a set of the words of every function would cost a worker
    tens of MB."""
    end = len(text) if end is None else end
    return text.find(word, start, end) >= 0 and _word_pattern(word).search(text, start, end) is not None


@dataclass(eq=False)
class Unit:
    name: str
    first_line: int  # 1-based; the first decorator's line
    def_line: int
    end_line: int
    in_class: bool
    # imports anywhere in the body, in source order: (None, [(name, as)]) or (module, [(name, as)])
    imports: List[Tuple[Optional[str], List[Tuple[str, Optional[str]]]]] = field(default_factory=list)


def outline(tree: ast.Module, lines: List[str]) -> List[Unit]:
    """The units of a module, in source order."""
    import_lines = [number for number, line in enumerate(lines, 1) if "import" in line]
    units = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            units.append(_unit(statement, False, import_lines))
        elif isinstance(statement, ast.ClassDef):
            units.extend(_method_units(statement, import_lines))
    return units


def _method_units(cls: ast.ClassDef, import_lines: List[int]) -> Iterator[Unit]:
    """The methods of a class, and of the classes defined in its body (the builder makes those units too)."""
    for statement in cls.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield _unit(statement, True, import_lines)
        elif isinstance(statement, ast.ClassDef):
            yield from _method_units(statement, import_lines)


def _unit(node, in_class: bool, import_lines: List[int]) -> Unit:
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    unit = Unit(node.name, first, node.lineno, node.end_lineno or node.lineno, in_class)
    at = bisect.bisect_left(import_lines, node.lineno)
    if at == len(import_lines) or import_lines[at] > unit.end_line:
        return unit  # no line of the body says "import"
    found = []
    for current in block_statements(node):
        if isinstance(current, ast.Import):
            found.append(((current.lineno, current.col_offset),
                          (None, [(alias.name, alias.asname) for alias in current.names])))
        elif isinstance(current, ast.ImportFrom):
            if not any(alias.name == "*" for alias in current.names):
                module = "." * current.level + (current.module or "")
                found.append(((current.lineno, current.col_offset),
                              (module, [(alias.name, alias.asname) for alias in current.names])))
    unit.imports = [entry for _, entry in sorted(found, key=lambda pair: pair[0])]
    return unit


def skeleton(lines: List[str], units: List[Unit]) -> str:
    """The source with each unit's `def` and body replaced by `def name(): pass` and empty lines."""
    out = list(lines)
    for unit in units:
        line = lines[unit.def_line - 1]
        indent = line[:len(line) - len(line.lstrip(" \t\f"))]
        out[unit.def_line - 1] = f"{indent}def {unit.name}(): pass\n"
        for number in range(unit.def_line, unit.end_line):
            out[number] = "\n"
    return "".join(out)


class Parts:
    """What is left to parse of a file loaded in parts, and the trees parsed so far."""

    def __init__(self, facts: FileFacts, lines: List[str], units: List[Unit], skeleton_chars: int) -> None:
        self.facts = facts
        self.line_starts = line_starts(facts.source)
        self.units = units
        self.pending: Dict[int, Tuple[Scope, Unit]] = {}  # id(stub scope) -> (scope, unit), filled by the builder
        self.segments: List[Tuple[cst.Module, int]] = []  # parsed bodies and their line offsets
        self._segment_of: Dict[int, Tuple[cst.CSTNode, cst.Module, int]] = {}  # id(function) -> it and its segment
        self.parsed_chars = skeleton_chars

    def fill(self, scope: Scope) -> None:
        from dllint.model.builder import _Builder

        entry = self.pending.pop(id(scope), None)
        if entry is None:
            raise AttributeError("scope of a file loaded in parts has no body to fill")
        unit = entry[1]
        text = self.facts.source[self.line_starts[unit.first_line - 1]:self.line_starts[unit.end_line]]
        # A method keeps its indentation under a stand-in class header, so columns stay exact.
        offset = unit.first_line - 1
        if unit.in_class:
            text, offset = "class _:\n" + text, offset - 1
        module = cst.parse_module(text)
        node = module.body[0].body.body[0] if unit.in_class else module.body[0]
        for name, value in Scope(scope.name, scope.qualname, node, self.facts, scope.cls, scope.parent).__dict__.items():
            if name in LAZY_SCOPE_FIELDS:
                scope.__dict__[name] = value
        builder = _Builder(self.facts)
        builder.record_imports = False  # the skeleton recorded them, in source order
        builder.scope, builder.cls, builder.order, builder.step = scope.parent, scope.cls, scope.start - 1, 1
        scopes_before, classes_before = len(self.facts.scopes), len(self.facts.all_class_list)
        builder.function_body(scope, node)
        self.segments.append((module, offset))
        self._segment_of[id(node)] = (node, module, offset)
        self.parsed_chars += len(text)
        if len(self.facts.scopes) > scopes_before:
            self.facts.scopes.sort(key=lambda s: s.start)
        if len(self.facts.all_class_list) > classes_before:
            self.facts.all_class_list.sort(key=lambda c: c.order)
        self.facts.calls_by_spelling = None

    def _fill_where(self, wanted) -> None:
        for scope, unit in sorted(self.pending.values(), key=lambda entry: entry[0].start):
            if wanted(scope, unit) and id(scope) in self.pending:
                self.fill(scope)

    def fill_all(self) -> None:
        self._fill_where(lambda scope, unit: True)

    def fill_mentioning(self, words: Iterable[str]) -> None:
        wanted = set(words)
        self._fill_where(lambda scope, unit: any(self._mentions(unit, word) for word in wanted))

    def fill_class(self, cls, word: Optional[str] = None) -> None:
        """The methods of `cls` (those that can contain `word`)."""
        self._fill_where(lambda scope, unit: scope.cls is cls and (word is None or self._mentions(unit, word)))

    def _mentions(self, unit: Unit, word: str) -> bool:
        return mentions_word(self.facts.source, word, self.line_starts[unit.first_line - 1],
                             self.line_starts[unit.end_line])

    def trees(self) -> List[Tuple[cst.Module, int]]:
        return [(self.facts.tree, 0)] + self.segments

    def segment_of(self, node: cst.CSTNode) -> Optional[Tuple[cst.Module, int]]:
        """The tree and line offset of a function parsed on its own, when `node` is that function."""
        found = self._segment_of.get(id(node))
        return (found[1], found[2]) if found is not None and found[0] is node else None


def build_in_parts(path: str, module_name: str, source: str, syntax_tree: ast.Module) -> Optional[FileFacts]:
    """Facts of a file parsed as a skeleton (None when the outline and the skeleton disagree)."""
    from dllint.model.builder import OutlineMismatch, build_file_facts

    lines = split_lines(source)
    units = outline(syntax_tree, lines)
    text = skeleton(lines, units)
    tree = cst.parse_module(text)
    try:
        return build_file_facts(path, module_name, source, tree, units=units, lines=lines,
                                skeleton_chars=len(text) - sum(u.end_line - u.def_line for u in units))
    except OutlineMismatch:
        return None
