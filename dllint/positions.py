"""Source positions, computed only for files that have something to report.

libcst's PositionProvider is a full extra pass over a tree, costing twice its parse. In a file
parsed whole, a node is placed by a position pass over the smallest statement around it whose text
occurs once in the file (found by a walk that stops at the node): the statement's text says on which
line it starts. A file loaded in parts (model/parts.py) has several trees: its skeleton and the
function bodies parsed since, each with the line it starts at; they get the full pass once per tree.
"""

from __future__ import annotations

import bisect
from typing import Dict, Iterable, List, Optional, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

try:
    # libcst's own position pass generates code through this state. It is internal to libcst: where a
    # version lacks it, every node gets the whole pass (slower, same positions).
    from libcst.metadata.position_provider import PositionProvidingCodegenState
except ImportError:  # pragma: no cover - depends on the installed libcst
    PositionProvidingCodegenState = None

from dllint.lines import line_starts
from dllint.model.builder import _child_fields
from dllint.model.facts import FileFacts

_cache: Dict[int, Tuple[FileFacts, List[Tuple[cst.Module, int, Dict[cst.CSTNode, object]]]]] = {}
# Nodes of files parsed whole placed so far: (facts, {node: (lines before its statement, its range
# in the statement)}).
_placed: Dict[int, Tuple[FileFacts, Dict[cst.CSTNode, Tuple[int, object]]]] = {}
# Files parsed from a rewritten text (dllint/libcst_view.py): (facts, characters removed at the start
# of each line, lines rewritten).
_rewritten: Dict[int, Tuple[FileFacts, Dict[int, int], Set[int]]] = {}


def parsed_from_view(facts: FileFacts, shifts: Dict[int, int], changed_lines: Set[int]) -> None:
    """`facts` were parsed from a rewritten text: columns on `shifts`' lines are moved back."""
    _rewritten[id(facts)] = (facts, shifts, changed_lines)


def rewritten_lines(facts: FileFacts) -> Set[int]:
    entry = _rewritten.get(id(facts))
    return entry[2] if entry is not None and entry[0] is facts else set()


def _shift(facts: FileFacts, line: int) -> int:
    entry = _rewritten.get(id(facts))
    return entry[1].get(line, 0) if entry is not None and entry[0] is facts else 0


def _trees(facts: FileFacts) -> List[Tuple[cst.Module, int]]:
    return facts.parts.trees() if facts.parts is not None else [(facts.tree, 0)]


def _positions(facts: FileFacts):
    """(tree, line offset, positions) for each tree of the file, computed once per tree."""
    entry = _cache.get(id(facts))
    if entry is None or entry[0] is not facts:
        entry = (facts, [])
        _cache[id(facts)] = entry
    known = entry[1]
    for tree, offset in _trees(facts)[len(known):]:
        wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
        known.append((tree, offset, wrapper.resolve(PositionProvider)))
    return known


def tree_of(facts: FileFacts, node: cst.CSTNode) -> Tuple[cst.Module, int]:
    """The tree holding `node` and the file line its first line is."""
    if facts.parts is None:
        return facts.tree, 0  # the file's one tree: no need for positions (a pass over all of it)
    segment = facts.parts.segment_of(node)
    if segment is not None:
        return segment  # a function parsed on its own: its tree's root, no positions needed
    for tree, offset, positions in _positions(facts):
        if node in positions:
            return tree, offset
    raise KeyError(node)


def span_of(facts: FileFacts, node: cst.CSTNode) -> Tuple[int, int, int, int]:
    """1-based line and column of the start and end of `node`."""
    offset, code_range = _range(facts, node)
    line, end_line = code_range.start.line + offset, code_range.end.line + offset
    return (line, code_range.start.column + 1 + _shift(facts, line),
            end_line, code_range.end.column + 1 + _shift(facts, end_line))


def place(facts: FileFacts, nodes: Iterable[cst.CSTNode]) -> None:
    """Work out where `nodes` of a file parsed whole are, in one walk (span_of then answers at once)."""
    if facts.parts is not None or PositionProvidingCodegenState is None or not hasattr(facts.tree, "_codegen"):
        return
    entry = _placed.get(id(facts))
    if entry is None or entry[0] is not facts:
        entry = _placed[id(facts)] = (facts, {})
    missing = [node for node in nodes if node not in entry[1]]
    if missing:
        entry[1].update(placed_in_statements(facts.tree, facts.source, missing))


def _range(facts: FileFacts, node: cst.CSTNode):
    """(line offset, CodeRange) of `node`."""
    if facts.parts is None:
        place(facts, (node,))
        entry = _placed.get(id(facts))
        found = entry[1].get(node) if entry is not None else None
        if found is not None:
            return found
    for _, offset, positions in _positions(facts):
        code_range = positions.get(node)
        if code_range is not None:
            return offset, code_range
    raise KeyError(node)


def line_of(facts: FileFacts, node: cst.CSTNode) -> int:
    return span_of(facts, node)[0]


def forget(facts: FileFacts) -> None:
    _cache.pop(id(facts), None)
    _placed.pop(id(facts), None)
    _rewritten.pop(id(facts), None)


def _statements_around(module: cst.Module, wanted: Set[cst.CSTNode]):
    """For each node of `wanted` in `module`: the statements around it, outermost first, each with the
    indentation its blocks give it. Walks until every node is found."""
    found = {}
    stack = [(statement, ((statement, ()),), ()) for statement in reversed(module.body)]
    remaining = len(wanted)
    while stack and remaining:
        node, chain, indents = stack.pop()
        if node in wanted:
            found[node] = chain
            remaining -= 1
        node_type = type(node)
        if node_type is cst.IndentedBlock:
            inner = indents + (module.default_indent if node.indent is None else node.indent,)
            stack.extend((statement, chain + ((statement, inner),), inner) for statement in reversed(node.body))
            continue
        for name in _child_fields(node_type):  # a node it does not reach gets the full pass
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                stack.append((value, chain, indents))
            elif type(value) in (list, tuple):
                stack.extend((child, chain, indents) for child in reversed(value) if isinstance(child, cst.CSTNode))
    return found


class _Ranges:
    """What libcst's position state writes to."""

    def __init__(self) -> None:
        self._computed: Dict[cst.CSTNode, object] = {}


def placed_in_statements(module: cst.Module, text: str, nodes: Iterable[cst.CSTNode]):
    """{node: (lines before its statement, its CodeRange within the statement)} for `nodes` of `module`,
    whose code is `text`. A statement's code generated on its own (with its block's indentation) is
    the same text as in the file, and starts a line; where it occurs once in `text`, that is its
    place. The innermost such statement is used; a node without one is left out."""
    wanted = set(nodes)
    placed = {}
    passes: Dict[int, Tuple[Optional[int], Optional[dict]]] = {}
    for node, chain in _statements_around(module, wanted).items():
        for statement, indents in reversed(chain):
            if id(statement) not in passes:
                passes[id(statement)] = _statement_pass(module, text, statement, indents)
            before, ranges = passes[id(statement)]
            if before is not None and node in ranges:
                placed[node] = (before, ranges[node])
                break
    return placed


def _statement_pass(module: cst.Module, text: str, statement: cst.CSTNode, indents: Tuple[str, ...]):
    """(lines before `statement`, the positions of its nodes), or (None, None) when its code does not
    occur exactly once in `text`, at the start of a line."""
    ranges = _Ranges()
    state = PositionProvidingCodegenState(default_indent=module.default_indent,
                                          default_newline=module.default_newline, provider=ranges)
    state.indent_tokens = list(indents)
    statement._codegen(state)
    code = "".join(state.tokens)
    start = text.find(code)
    if start < 0 or text.find(code, start + 1) >= 0 or (start > 0 and text[start - 1] not in "\r\n"):
        return None, None
    return bisect.bisect_right(line_starts(text), start) - 1, ranges._computed
