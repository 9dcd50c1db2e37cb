"""Lines as Python counts them: broken at "\n", "\r\n" and a lone "\r", and nowhere else.

str.splitlines also breaks at form feeds and other separators that Python source keeps inside a
line, which would shift every line number after one. Used wherever a line number from the parser
meets the text (parts, fixes, source excerpts, suppressions); imports nothing heavy.
"""

from __future__ import annotations

import re
from array import array
from typing import List

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


def line_starts(text: str) -> "array[int]":
    """Where each line of `text` starts, and where the last one ends: 8 bytes a line."""
    starts = array("q", [0])
    starts.extend(match.end() for match in _LINE_BREAK.finditer(text))
    if starts[-1] != len(text):
        starts.append(len(text))
    return starts
