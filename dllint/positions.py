"""Source positions, computed only for files that have something to report.

libcst's PositionProvider is a full extra pass, so it runs once per file and
only when a finding (or a message naming a line) needs it.
"""

from __future__ import annotations

from typing import Dict, Tuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from dllint.model.facts import FileFacts

_cache: Dict[int, Tuple[FileFacts, Dict[cst.CSTNode, object]]] = {}


def positions_of(facts: FileFacts):
    entry = _cache.get(id(facts))
    if entry is None or entry[0] is not facts:
        wrapper = MetadataWrapper(facts.tree, unsafe_skip_copy=True)
        entry = (facts, wrapper.resolve(PositionProvider))
        _cache[id(facts)] = entry
    return entry[1]


def span_of(facts: FileFacts, node: cst.CSTNode) -> Tuple[int, int, int, int]:
    """1-based line and column of the start and end of `node`."""
    code_range = positions_of(facts)[node]
    return (code_range.start.line, code_range.start.column + 1, code_range.end.line, code_range.end.column + 1)


def line_of(facts: FileFacts, node: cst.CSTNode) -> int:
    return span_of(facts, node)[0]


def forget(facts: FileFacts) -> None:
    _cache.pop(id(facts), None)
