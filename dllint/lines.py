"""Lines as Python counts them: broken at "\n", "\r\n" and a lone "\r", and nowhere else.

str.splitlines also breaks at form feeds and other separators that Python source keeps inside a
line, which would shift every line number after one. Used wherever a line number from the parser
meets the text (parts, fixes, source excerpts, suppressions); imports nothing heavy.
"""

from __future__ import annotations

import re
from array import array
from typing import List, Optional, Tuple

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(source: str) -> List[str]:
    """The lines of `source`, each with its line break."""
    lines, start = [], 0
    for match in _LINE_BREAK.finditer(source):
        lines.append(source[start:match.end()])
        start = match.end()
    if start < len(source):
        lines.append(source[start:])
    return lines


# The last text asked about and its answer: callers ask about one file again and again (every fix
# of a file, every finding shown with its line), and computing it each time made that quadratic.
_last_starts: Tuple[Optional[str], "array[int]"] = (None, array("q"))
_last_lines: Tuple[Optional[str], Tuple[str, ...]] = (None, ())


def line_starts(text: str) -> "array[int]":
    """Where each line of `text` starts, and where the last one ends: 8 bytes a line. Read-only:
    the same array is returned for the same text."""
    global _last_starts
    if _last_starts[0] is text:
        return _last_starts[1]
    starts = array("q", [0])
    starts.extend(match.end() for match in _LINE_BREAK.finditer(text))
    if starts[-1] != len(text):
        starts.append(len(text))
    _last_starts = (text, starts)
    return starts


def lines_of(text: str) -> Tuple[str, ...]:
    """split_lines(text), read-only and remembered for the last text asked about."""
    global _last_lines
    if _last_lines[0] is not text:
        _last_lines = (text, tuple(split_lines(text)))
    return _last_lines[1]
