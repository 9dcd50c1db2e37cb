"""Automatic fixes: a libcst node replacement, turned into a minimal text edit of the file.

Rendering the whole module with and without the replacement and keeping only the changed span
guarantees that every other byte of the file stays as it was.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import libcst as cst

from dllint.lines import line_starts

SAFE, UNSAFE = "safe", "unsafe"


@dataclass(frozen=True)
class Fix:
    applicability: str  # SAFE: certainly keeps the intent; UNSAFE: changes behaviour, review it
    description: str
    old: cst.CSTNode
    new: Union[cst.CSTNode, cst.FlattenSentinel]


def insert_before(statement: cst.SimpleStatementLine, code: str) -> cst.FlattenSentinel:
    """`code` as a new statement just above `statement`, taking over its leading comments."""
    inserted = cst.parse_statement(code).with_changes(leading_lines=statement.leading_lines)
    return cst.FlattenSentinel([inserted, statement.with_changes(leading_lines=())])


def edit_for(tree: cst.Module, source: str, fix: Fix,
             span: Optional[Tuple[int, int, int, int]] = None) -> Optional[Dict[str, object]]:
    """The fix as a JSON-ready edit: 1-based start/end (end exclusive) and the new text.

    The edit covers the replaced node's span when the change stays inside it (readable edits),
    otherwise the smallest span that differs."""
    if span is not None:
        local = local_edit(tree, source, fix, span)
        if local is not None:
            return local
    try:
        changed = tree.deep_replace(fix.old, fix.new).code  # type: ignore[arg-type]
    except Exception:
        return None
    if changed == source:
        return None
    if span is not None:
        starts = line_starts(source)
        begin, finish = _offset(starts, span[0], span[1]), _offset(starts, span[2], span[3])
        tail = len(source) - finish
        if changed[:begin] == source[:begin] and changed[len(changed) - tail:] == source[finish:]:
            return {"applicability": fix.applicability, "message": fix.description,
                    "edits": [{"line": span[0], "column": span[1], "end_line": span[2], "end_column": span[3],
                               "content": changed[begin:len(changed) - tail]}]}
    start = 0
    limit = min(len(source), len(changed))
    while start < limit and source[start] == changed[start]:
        start += 1
    end_old, end_new = len(source), len(changed)
    while end_old > start and end_new > start and source[end_old - 1] == changed[end_new - 1]:
        end_old -= 1
        end_new -= 1
    starts = line_starts(source)
    line, column = _line_column(source, starts, start)
    end_line, end_column = _line_column(source, starts, end_old)
    return {"applicability": fix.applicability, "message": fix.description,
            "edits": [{"line": line, "column": column, "end_line": end_line, "end_column": end_column,
                       "content": changed[start:end_new]}]}


def local_edit(tree: cst.Module, source: str, fix: Fix, span) -> Optional[Dict[str, object]]:
    """The edit computed from the replaced node alone: no pass over the whole module.

    Used when the node's span holds exactly its generated code (checked), which is the usual case."""
    starts = line_starts(source)
    begin, finish = _offset(starts, span[0], span[1]), _offset(starts, span[2], span[3])
    expected = fix.old.with_changes(leading_lines=()) if isinstance(fix.old, cst.SimpleStatementLine) else fix.old
    if source[begin:finish].strip() != tree.code_for_node(expected).strip():
        return None
    if isinstance(fix.new, cst.FlattenSentinel):
        nodes = list(fix.new.nodes)
        if len(nodes) != 2 or not isinstance(fix.old, cst.SimpleStatementLine) or \
                nodes[1].deep_equals(fix.old.with_changes(leading_lines=())) is False:
            return None
        inserted = tree.code_for_node(nodes[0].with_changes(leading_lines=())).rstrip("\r\n")
        indent = source[starts[span[0] - 1]:begin]
        if indent.strip():
            return None
        content, finish = f"{inserted}{_line_break(source, starts, span[0], tree)}{indent}", begin
        end_line, end_column = span[0], span[1]
    else:
        content = tree.code_for_node(fix.new)
        end_line, end_column = span[2], span[3]
    return {"applicability": fix.applicability, "message": fix.description,
            "edits": [{"line": span[0], "column": span[1], "end_line": end_line, "end_column": end_column,
                       "content": content}]}


def _line_break(source: str, starts: Sequence[int], line: int, tree: cst.Module) -> str:
    """The line break that ends line `line` (CRLF and lone CR files keep theirs)."""
    text = source[starts[line - 1]:starts[line]] if line < len(starts) else ""
    for ending in ("\r\n", "\r", "\n"):
        if text.endswith(ending):
            return ending
    return tree.default_newline


def _line_column(text: str, starts: Sequence[int], offset: int) -> Tuple[int, int]:
    """1-based line and column of `offset`; `starts` from line_starts(text)."""
    # line_starts ends with the text's end; it starts a line only after a final line break.
    lines = len(starts) if not text or text.endswith(("\n", "\r")) else len(starts) - 1
    line = min(bisect.bisect_right(starts, offset), lines)
    return line, offset - starts[line - 1] + 1


def _offset(lines_start: Sequence[int], line: int, column: int) -> int:
    return lines_start[line - 1] + column - 1


def apply_edits(source: str, fixes: Sequence[Dict[str, object]]) -> Tuple[str, int]:
    """Apply non-overlapping edits (first come, first served); returns the new text and how many applied."""
    chosen = chosen_edits(source, fixes)
    for begin, finish, content in reversed(chosen):
        source = source[:begin] + content + source[finish:]
    return source, len(chosen)


def chosen_edits(source: str, fixes: Sequence[Dict[str, object]]) -> List[Tuple[int, int, str]]:
    """The fixes' edits as (begin, end, new text) offsets in `source`, sorted, leaving out each edit
    that overlaps an earlier one (first come, first served)."""
    starts = line_starts(source)
    spans = []
    for fix in fixes:
        for edit in fix["edits"]:  # type: ignore[union-attr]
            begin = _offset(starts, edit["line"], edit["column"])
            finish = _offset(starts, edit["end_line"], edit["end_column"])
            spans.append((begin, finish, edit["content"]))
    chosen = []
    for span in sorted(spans, key=lambda s: (s[0], s[1])):
        if chosen and span[0] < chosen[-1][1] or (chosen and span[0] == chosen[-1][0]):
            continue  # overlaps an earlier edit: left for the next round
        chosen.append(span)
    return chosen


def with_keyword(call: cst.Call, keyword: str, value: str) -> cst.Call:
    """`call` with `keyword=value` appended to its arguments."""
    argument = cst.Arg(keyword=cst.Name(keyword), value=cst.parse_expression(value),
                       equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                             whitespace_after=cst.SimpleWhitespace("")))
    args = list(call.args)
    if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return call.with_changes(args=[*args, argument])


def method_call(receiver: cst.BaseExpression, method: str) -> cst.Call:
    """`receiver.method()`, parenthesising a receiver that needs it."""
    if not isinstance(receiver, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        receiver = receiver.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.Call(func=cst.Attribute(value=receiver, attr=cst.Name(method)))


def drop_activation(loss_input: cst.BaseExpression, source_node: cst.CSTNode, scope_code: str,
                    name: str) -> Optional[Fix]:
    """Remove a softmax/sigmoid whose only use is the loss: inline in the loss call, or a variable
    assigned in the same function and read nowhere else. Unsafe: the probabilities disappear."""
    if not isinstance(source_node, cst.Call):
        return None
    if isinstance(source_node.func, cst.Attribute) and source_node.func.attr.value in ("softmax", "sigmoid") \
            and not _is_module_path(source_node.func.value):
        logits = source_node.func.value
    elif source_node.args:
        logits = source_node.args[0].value
    else:
        return None
    if source_node is loss_input:
        return Fix(UNSAFE, f"pass the logits, not {name}", source_node, logits)
    if isinstance(loss_input, cst.Name) and \
            len(re.findall(rf"\b{re.escape(loss_input.value)}\b", scope_code)) == 2:
        return Fix(UNSAFE, f"drop the {name}: its only use is the loss", source_node, logits)
    return None


def _is_module_path(expr: cst.BaseExpression) -> bool:
    """`torch` or `F` in `torch.softmax(x)`: a function call, not a tensor method."""
    return isinstance(expr, (cst.Name, cst.Attribute)) and \
        cst.Module([]).code_for_node(expr) in ("torch", "F", "nn.functional", "torch.nn.functional", "torch.special")
