"""Source positions, computed only for files that have something to report.

libcst's PositionProvider is a full extra pass, so it runs once per tree and only when a finding
(or a message naming a line) needs it. A file loaded in parts (model/parts.py) has several trees:
its skeleton and the function bodies parsed since, each with the line it starts at.
"""

from __future__ import annotations

from typing import Dict, List, Set, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dllint.model.facts import FileFacts

_cache: Dict[int, Tuple[FileFacts, List[Tuple[cst.Module, int, Dict[cst.CSTNode, object]]]]] = {}
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
    for _, offset, positions in _positions(facts):
        code_range = positions.get(node)
        if code_range is not None:
            line, end_line = code_range.start.line + offset, code_range.end.line + offset
            return (line, code_range.start.column + 1 + _shift(facts, line),
                    end_line, code_range.end.column + 1 + _shift(facts, end_line))
    raise KeyError(node)


def line_of(facts: FileFacts, node: cst.CSTNode) -> int:
    return span_of(facts, node)[0]


def forget(facts: FileFacts) -> None:
    _cache.pop(id(facts), None)
    _rewritten.pop(id(facts), None)
