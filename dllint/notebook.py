"""Jupyter notebooks as source files with cells, as ruff lints them.

The code cells are joined into one Python source (each cell ends with a line break), with IPython's
own syntax masked line by line: magics (`%time`, `%%bash`), shell escapes (`!pip install`,
`files = !ls`), help (`model?`, `?torch.nn`) and the autocall escapes (`/f x`, `,f x`, `;f x`).
Everything downstream (parsing, rules, suppression comments, the cache) sees that joined source;
positions are mapped back to cells only when they are shown, and fixes are written back into the
notebook's JSON by replacing the changed cells' `source` values and nothing else.

Cells are numbered as editors show them: the position among all cells (markdown included), from 1.
Imports nothing heavy: the formatters use it too.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring
from typing import Dict, List, Optional, Sequence, Tuple

from dllint.lines import split_lines

NOTEBOOK_SUFFIX = ".ipynb"

# Cell magics whose body is Python run by IPython (timed, captured, profiled): only their first
# line is masked. Any other cell magic (`%%bash`, `%%writefile`, `%%html`) masks the whole cell.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug", "python", "python3", "pypy"}

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# `files = !ls`, `t = %timeit -o f()`: a shell or magic result assigned to names.
_MAGIC_ASSIGNMENT = re.compile(r"^(\s*[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*\s*=)\s*[!%]")
_ESCAPES = ("%", "!", "?", "/", ";", ",")


def is_notebook(path: str) -> bool:
    return path.lower().endswith(NOTEBOOK_SUFFIX)


class NotebookError(Exception):
    """A notebook that cannot be linted: not JSON, or not the nbformat 4 layout. Positions are in the file."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass
class Cell:
    """One code cell: its text as written, as joined (masked), and where its source lies in the file."""

    number: int  # 1-based position among all cells
    text: str  # the cell's source as written
    masked: str  # the same lines with IPython syntax masked (line count unchanged)
    masked_lines: List[int]  # 0-based lines of the cell that were masked
    first_line: int = 0  # 1-based line of the joined source where the cell starts
    start: int = 0  # offset of the cell in the joined source
    # Where the `source` value lies in the file, and each of its strings (one for a plain string).
    value_span: Tuple[int, int] = (0, 0)
    element_spans: List[Tuple[int, int]] = field(default_factory=list)
    is_list: bool = True

    @property
    def line_count(self) -> int:
        return len(split_lines(self.masked))


@dataclass
class Notebook:
    raw: str  # the file's text, kept to write fixes back byte for byte
    cells: List[Cell]
    code: str  # the joined, masked source that is linted
    language: Optional[str] = None  # the kernel's language as the notebook names it ("python", "R", "julia")

    def cell_at(self, line: int) -> Optional[Cell]:
        """The cell holding joined line `line`."""
        starts = [cell.first_line for cell in self.cells]
        index = bisect.bisect_right(starts, line) - 1
        return self.cells[index] if index >= 0 else None

    def cell_position(self, line: int) -> Tuple[int, int]:
        """(cell number, line within the cell) of joined line `line`."""
        cell = self.cell_at(line)
        if cell is None:
            return 1, line
        return cell.number, line - cell.first_line + 1

    def describe_line(self, line: int) -> str:
        """`cell 3, line 4`, for messages that name another place in the notebook."""
        number, cell_line = self.cell_position(line)
        return f"cell {number}, line {cell_line}"

    def file_position(self, line: int, column: int) -> Tuple[int, int]:
        """Line and column (1-based, code points) in the notebook's JSON text of joined position
        (line, column): where the character sits inside the cell's source string, which is what code
        hosts and editors that show the file itself can point at."""
        cell = self.cell_at(line)
        if cell is None or not cell.element_spans:
            return 1, 1
        masked_lines = split_lines(cell.masked)
        cell_line = min(max(line - cell.first_line, 0), max(len(masked_lines) - 1, 0))
        offset = sum(len(text) for text in masked_lines[:cell_line]) + max(column - 1, 0)
        offset = _original_offset(cell, min(offset, len(cell.masked)))
        # The string of the source list that holds the offset.
        position = 0
        for start, end in cell.element_spans:
            value, _ = scanstring(self.raw, start + 1)
            if offset <= position + len(value) or (start, end) == cell.element_spans[-1]:
                raw_offset = _raw_offset(self.raw, start, min(offset - position, len(value)))
                break
            position += len(value)
        file_line = self.raw.count("\n", 0, raw_offset) + 1
        return file_line, raw_offset - (self.raw.rfind("\n", 0, raw_offset) + 1) + 1

    def apply_edits(self, spans: Sequence[Tuple[int, int, str]]) -> Tuple[str, int]:
        """The notebook's new JSON text after edits of the joined source: (begin, end, new text) offsets,
        not overlapping. An edit that crosses a cell boundary or touches a masked line is left out.
        Returns the text and how many edits were applied."""
        starts = [cell.start for cell in self.cells]
        by_cell: Dict[int, List[Tuple[int, int, str]]] = {}
        for begin, end, content in spans:
            index = bisect.bisect_right(starts, begin) - 1
            if index < 0:
                continue
            cell = self.cells[index]
            local_begin, local_end = begin - cell.start, end - cell.start
            if local_end > len(cell.masked) or _touches_masked(cell, local_begin, local_end):
                continue
            by_cell.setdefault(index, []).append(
                (_original_offset(cell, local_begin), _original_offset(cell, local_end), content))
        replacements = []
        applied = 0
        for index, edits in by_cell.items():
            cell = self.cells[index]
            text = cell.text
            for begin, end, content in sorted(edits, reverse=True):
                text = text[:begin] + content + text[end:]
            applied += len(edits)
            if text != cell.text:
                replacements.append((cell.value_span, self._render_source(cell, text)))
        raw = self.raw
        for (begin, end), rendered in sorted(replacements, reverse=True):
            raw = raw[:begin] + rendered + raw[end:]
        return raw, applied

    def _render_source(self, cell: Cell, text: str) -> str:
        """The cell's `source` value holding `text`, in the file's own style: strings that did not
        change are kept as written, the list keeps its indentation and separators."""
        import difflib

        ascii_only = not any(ord(ch) > 127 for ch in self.raw)
        if not cell.is_list:
            return json.dumps(text, ensure_ascii=ascii_only)
        old_tokens = [self.raw[start:end] for start, end in cell.element_spans]
        old_values = [scanstring(self.raw, start + 1)[0] for start, end in cell.element_spans]
        new_values = _split_like(text, old_values)
        tokens: List[str] = []
        matcher = difflib.SequenceMatcher(None, old_values, new_values, autojunk=False)
        for tag, old_from, old_to, new_from, new_to in matcher.get_opcodes():
            if tag == "equal":
                tokens.extend(old_tokens[old_from:old_to])
            else:
                tokens.extend(json.dumps(value, ensure_ascii=ascii_only) for value in new_values[new_from:new_to])
        value_start, value_end = cell.value_span
        if not cell.element_spans:
            return "[" + ", ".join(tokens) + "]"
        opening = self.raw[value_start + 1:cell.element_spans[0][0]]
        closing = self.raw[cell.element_spans[-1][1]:value_end - 1]
        separator = self.raw[cell.element_spans[0][1]:cell.element_spans[1][0]] \
            if len(cell.element_spans) > 1 else "," + opening
        if not tokens:
            return "[]"
        return "[" + opening + separator.join(tokens) + closing + "]"


def _split_like(text: str, old_values: List[str]) -> List[str]:
    """`text` as a list of strings, split as the cell was: one line per string (nbformat's way),
    or a single string when the cell was stored as one."""
    joined = "".join(old_values)
    if len(old_values) == 1 and len(split_lines(joined)) > 1:
        return [text]
    return text.splitlines(keepends=True) if "\r" in text and "\r" not in joined else _split_at_newlines(text)


def _split_at_newlines(text: str) -> List[str]:
    parts = text.split("\n")
    values = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        values.append(parts[-1])
    return values


def _raw_offset(raw: str, token_start: int, index: int) -> int:
    """Offset in `raw` of the `index`-th character of the JSON string token starting at `token_start`."""
    position = token_start + 1
    for _ in range(index):
        if raw[position] == "\\":
            # `\uD83D\uDE00` is one character written as two escapes.
            if raw[position + 1] == "u":
                code = int(raw[position + 2:position + 6], 16)
                position += 12 if 0xD800 <= code < 0xDC00 and raw.startswith("\\u", position + 6) else 6
            else:
                position += 2
        else:
            position += 1
    return position


def _line_offsets(text: str) -> List[int]:
    offsets, position = [], 0
    for line in split_lines(text):
        offsets.append(position)
        position += len(line)
    offsets.append(position)
    return offsets


def _touches_masked(cell: Cell, begin: int, end: int) -> bool:
    if not cell.masked_lines:
        return False
    offsets = _line_offsets(cell.masked)
    for line in cell.masked_lines:
        line_start, line_end = offsets[line], offsets[line + 1]
        if begin < line_end and end > line_start or line_start < begin < line_end:
            return True
    return False


def _original_offset(cell: Cell, offset: int) -> int:
    """Offset in the cell as written of `offset` in its masked text (outside masked lines)."""
    if not cell.masked_lines:
        return offset
    masked_offsets = _line_offsets(cell.masked)
    original_offsets = _line_offsets(cell.text)
    shift = 0
    for line in cell.masked_lines:
        if masked_offsets[line + 1] <= offset:
            shift = original_offsets[line + 1] - masked_offsets[line + 1]
    return offset + shift


# Masking ------------------------------------------------------------------------------------------


def _scan(line: str, depth: int, string: Optional[str]) -> Tuple[int, Optional[str], bool, Optional[int]]:
    """Bracket depth and open string after `line`, whether it ends with a line continuation, and
    where its comment starts (None without one)."""
    index, length = 0, len(line.rstrip("\r\n"))
    while index < length:
        char = line[index]
        if string is not None:
            if char == "\\":
                index += 2
                continue
            if line.startswith(string, index):
                index += len(string)
                string = None
                continue
            index += 1
            continue
        if char == "#":
            return depth, None, False, index
        if char in "'\"":
            string = char * 3 if line.startswith(char * 3, index) else char
            index += len(string)
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        index += 1
    continued = line.rstrip("\r\n").endswith("\\")
    if string is not None and len(string) == 1 and not continued:
        string = None  # an unterminated one-line string: Python reports it; scanning goes on
    return depth, string, continued, None


def _without_comment(line: str) -> str:
    comment = _scan(line, 0, None)[3]
    return line if comment is None else line[:comment]


def _is_ipython_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if stripped.startswith(_ESCAPES) and not stripped.startswith("!="):
        return True
    return _without_comment(stripped).rstrip().endswith("?")


def mask_ipython(text: str) -> Tuple[str, List[int]]:
    """`text` with every line of IPython syntax replaced by plain Python of the same indentation
    (`pass`, or `name = None` for an assigned shell result), and the 0-based masked lines."""
    lines = split_lines(text)
    masked: List[int] = []
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        name = first[2:].split(None, 1)[0] if len(first) > 2 else ""
        if name not in PYTHON_CELL_MAGICS:
            return "".join(_ending(line) for line in lines), list(range(len(lines)))
    out = []
    depth, string, continued, in_magic = 0, None, False, False
    for number, line in enumerate(lines):
        starts_statement = depth == 0 and string is None and not continued
        if in_magic:
            # A continuation line of a masked magic.
            out.append(_ending(line))
            masked.append(number)
            in_magic = line.rstrip("\r\n").endswith("\\")
            continued = False
            continue
        if starts_statement and (number == 0 and line.lstrip().startswith("%%") or _is_ipython_line(line)):
            indent = line[:len(line) - len(line.lstrip(" \t"))]
            out.append(indent + "pass" + _ending(line))
            masked.append(number)
            in_magic = line.rstrip("\r\n").endswith("\\")
            continue
        assignment = _MAGIC_ASSIGNMENT.match(line) if starts_statement else None
        if assignment:
            out.append(assignment.group(1) + " None" + _ending(line))
            masked.append(number)
            in_magic = line.rstrip("\r\n").endswith("\\")
            continue
        depth, string, continued, _ = _scan(line, depth, string)
        out.append(line)
    return "".join(out), masked


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):]


# Reading ------------------------------------------------------------------------------------------


def _skip(raw: str, index: int) -> int:
    return _WHITESPACE.match(raw, index).end()  # type: ignore[union-attr]


def _members(raw: str, index: int, decoder: json.JSONDecoder) -> Dict[str, Tuple[int, int]]:
    """Spans of the values of the JSON object starting at `index` (the last of duplicate keys)."""
    members: Dict[str, Tuple[int, int]] = {}
    index = _skip(raw, index + 1)
    if raw.startswith("}", index):
        return members
    while True:
        key, index = scanstring(raw, index + 1)
        index = _skip(raw, _skip(raw, index) + 1)  # past the colon
        _, end = decoder.raw_decode(raw, index)
        members[key] = (index, end)
        index = _skip(raw, end)
        if raw.startswith("}", index):
            return members
        index = _skip(raw, index + 1)  # past the comma


def _elements(raw: str, index: int, decoder: json.JSONDecoder) -> List[Tuple[int, int]]:
    """Spans of the elements of the JSON array starting at `index`."""
    spans: List[Tuple[int, int]] = []
    index = _skip(raw, index + 1)
    if raw.startswith("]", index):
        return spans
    while True:
        _, end = decoder.raw_decode(raw, index)
        spans.append((index, end))
        index = _skip(raw, end)
        if raw.startswith("]", index):
            return spans
        index = _skip(raw, index + 1)


def _position(raw: str, offset: int) -> Tuple[int, int]:
    return raw.count("\n", 0, offset) + 1, offset - (raw.rfind("\n", 0, offset) + 1) + 1


def read_notebook(raw: str) -> Notebook:
    """A notebook from its JSON text; raises NotebookError for anything that is not an nbformat 4
    notebook."""
    try:
        document = json.loads(raw[1:] if raw.startswith("\ufeff") else raw)
    except json.JSONDecodeError as error:
        raise NotebookError(f"notebook is not valid JSON: {error.msg}", error.lineno, error.colno) from None
    except (ValueError, RecursionError) as error:
        raise NotebookError(f"notebook is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        if isinstance(document, dict) and "worksheets" in document:
            raise NotebookError("notebook is in nbformat 3, which is not supported; convert it with "
                                "`jupyter nbconvert --to notebook`")
        raise NotebookError("not a Jupyter notebook: no `cells` list")
    decoder = json.JSONDecoder()
    start = _skip(raw, 0)
    if raw.startswith("\ufeff", start):
        start = _skip(raw, start + 1)
    cell_spans = _elements(raw, _members(raw, start, decoder)["cells"][0], decoder)
    cells: List[Cell] = []
    pieces: List[str] = []
    first_line, offset = 1, 0
    for number, (cell_data, (cell_start, _)) in enumerate(zip(document["cells"], cell_spans), start=1):
        if not isinstance(cell_data, dict):
            raise NotebookError(f"cell {number} is not a JSON object", *_position(raw, cell_start))
        if cell_data.get("cell_type") != "code":
            continue
        source = cell_data.get("source", "")
        members = _members(raw, cell_start, decoder)
        if isinstance(source, str):
            text, is_list = source, False
        elif isinstance(source, list) and all(isinstance(part, str) for part in source):
            text, is_list = "".join(source), True
        else:
            raise NotebookError(f"cell {number}: `source` is neither a string nor a list of strings",
                                *_position(raw, cell_start))
        masked, masked_lines = mask_ipython(text)
        cell = Cell(number, text, masked, masked_lines, first_line, offset, is_list=is_list)
        if "source" in members:
            cell.value_span = members["source"]
            cell.element_spans = _elements(raw, cell.value_span[0], decoder) if is_list else [cell.value_span]
        joined = masked if not masked or masked.endswith(("\n", "\r")) else masked + "\n"
        pieces.append(joined)
        cells.append(cell)
        first_line += len(split_lines(joined))
        offset += len(joined)
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    return Notebook(raw, cells, "".join(pieces), _language(metadata))


def _language(metadata: dict) -> Optional[str]:
    info = metadata.get("language_info")
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return info["name"]
    kernel = metadata.get("kernelspec")
    if isinstance(kernel, dict) and isinstance(kernel.get("language"), str):
        return kernel["language"]
    return None


def is_python(notebook: Notebook) -> bool:
    return notebook.language is None or notebook.language.lower() in ("python", "python3", "ipython", "ipython3")
