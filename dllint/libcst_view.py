"""Valid Python that libcst's parser rejects, rewritten into an equivalent text it accepts.

Used only after CPython has accepted a file and libcst has not. Three known gaps, each rewritten
without moving a line and, but for form feeds, without moving a column:

- a form feed in the indentation of a line that opens a nested block (`class A:` / `^L    def f():`):
  CPython counts indentation from the last form feed, so the characters up to it are dropped and
  the line's columns are shifted back when positions are reported;
- a parenthesised annotated target, `(x): int = 1`, becomes `x  : int = 1`;
- thousands of adjacent string literals (libcst gives up after about 3,000): a `+` takes the place of
  one space every STRING_RUN literals, which yields the same string.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from dllint.lines import split_lines

STRING_RUN = 1000


@dataclass
class View:
    source: str
    shifts: Dict[int, int] = field(default_factory=dict)  # line -> characters removed at its start
    changed_lines: Set[int] = field(default_factory=set)


def libcst_view(source: str, syntax_tree: Optional[ast.AST] = None) -> Optional[View]:
    """The rewritten source, or None when none of the known gaps is in `source`."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        tree = syntax_tree if syntax_tree is not None else ast.parse(source)
    except (SyntaxError, tokenize.TokenError, ValueError, RecursionError, MemoryError):
        return None
    lines = split_lines(source)
    view = View(source)
    _parenthesised_targets(tree, lines, view)
    _string_runs(tokens, lines, view)
    _form_feeds(tokens, lines, view)
    if not view.changed_lines:
        return None
    view.source = "".join(lines)
    return view


def _inside_strings(tokens) -> Set[int]:
    """Lines that begin inside a multi-line string token."""
    inside: Set[int] = set()
    for token in tokens:
        if token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    return inside


def _form_feeds(tokens, lines: List[str], view: View) -> None:
    inside = _inside_strings(tokens)
    for index, line in enumerate(lines):
        number = index + 1
        stripped = line.lstrip(" \t\f")
        indent = line[:len(line) - len(stripped)]
        if "\f" not in indent or number in inside:
            continue
        kept = indent[indent.rfind("\f") + 1:]
        lines[index] = kept + stripped
        view.shifts[number] = view.shifts.get(number, 0) + len(indent) - len(kept)
        view.changed_lines.add(number)


def _character_column(line: str, byte_offset: int) -> int:
    return len(line.encode("utf-8", "surrogatepass")[:byte_offset].decode("utf-8", "replace"))


def _parenthesised_targets(tree: ast.AST, lines: List[str], view: View) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.AnnAssign) or node.simple or node.end_lineno is None:
            continue
        target = node.target
        if node.lineno != target.end_lineno or node.lineno > len(lines):
            continue
        line = lines[node.lineno - 1]
        start = _character_column(line, node.col_offset)
        inner_start = _character_column(line, target.col_offset)
        inner_end = _character_column(line, target.end_col_offset or 0)
        if not line.startswith("(", start):
            continue
        colon = line.find(":", inner_end)
        if colon < 0 or line[inner_end:colon].strip(" \t)") or line[start:inner_start].strip(" \t("):
            continue
        name = line[inner_start:inner_end]
        lines[node.lineno - 1] = line[:start] + name + " " * (colon - start - len(name)) + line[colon:]
        view.changed_lines.add(node.lineno)


def _string_runs(tokens, lines: List[str], view: View) -> None:
    skipped = {tokenize.NL, tokenize.COMMENT}
    run = 0
    previous = None
    depth = 0  # inside an f-string (3.12 tokenizes its parts)
    for token in tokens:
        kind = token.type
        if kind == getattr(tokenize, "FSTRING_START", -1):
            depth += 1
            if depth == 1:
                start_token = token
            continue
        if depth:
            if kind == getattr(tokenize, "FSTRING_END", -1):
                depth -= 1
                if depth == 0:
                    run, previous = _next_literal(run, previous, start_token, token, lines, view)
            continue
        if kind == tokenize.STRING:
            run, previous = _next_literal(run, previous, token, token, lines, view)
        elif kind not in skipped:
            run, previous = 0, None


def _next_literal(run, previous, first, last, lines: List[str], view: View):
    run += 1
    if previous is not None and run > STRING_RUN and _join_with_plus(previous, first, lines, view):
        run = 1
    return run, last


def _join_with_plus(previous, token, lines: List[str], view: View) -> bool:
    """Replace one space between two adjacent literals with `+`."""
    (end_row, end_column), (row, column) = previous.end, token.start
    line = lines[row - 1]
    first = end_column if end_row == row else 0
    gap = line[first:column]
    if "#" in gap:
        return False
    for offset in range(len(gap) - 1, -1, -1):
        if gap[offset] in " \t":
            position = first + offset
            lines[row - 1] = line[:position] + "+" + line[position + 1:]
            view.changed_lines.add(row)
            return True
    return False
