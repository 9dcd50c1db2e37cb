"""Repository-relative paths and stable fingerprints, shared by the reports that code hosts read."""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from dllint.findings import Finding
from dllint.lines import lines_of


def repository_path(path: str, root: Optional[str]) -> str:
    """`path` relative to the repository root, with forward slashes; absolute when outside it."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, root or os.getcwd())
    if relative.startswith(".."):
        return absolute.replace(os.sep, "/")
    return relative.replace(os.sep, "/")


def source_line(sources: Mapping[str, Optional[str]], finding: Finding) -> Optional[str]:
    text = sources.get(finding.path)
    if text is None:
        return None
    lines = lines_of(text)
    return lines[finding.line - 1] if 0 < finding.line <= len(lines) else None


def fingerprints(findings: Sequence[Finding], sources: Mapping[str, Optional[str]],
                 root: Optional[str]) -> Dict[int, str]:
    """A fingerprint per finding (keyed by position in `findings`) that stays put when lines move:
    code, file and the flagged line's text, plus a counter for identical lines."""
    seen: Dict[str, int] = {}
    result: Dict[int, str] = {}
    for index, finding in enumerate(findings):
        text = source_line(sources, finding)
        anchor = " ".join(text.split()) if text is not None else f"line {finding.line}"
        key = "\0".join((finding.code, repository_path(finding.path, root), anchor))
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        result[index] = hashlib.sha256(f"{key}\0{occurrence}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return result


def shown_position(finding: Finding, notebooks: Mapping[str, Any]) -> str:
    """`12:5`, or `cell 3:12:5` in a notebook (the line counted within the cell)."""
    notebook = notebooks.get(finding.path)
    if notebook is None:
        return f"{finding.line}:{finding.column}"
    cell, line = notebook.cell_position(finding.line)
    return f"cell {cell}:{line}:{finding.column}"


def shown_line(finding: Finding, notebooks: Mapping[str, Any]) -> int:
    """The line number a reader looks for: within its cell in a notebook."""
    notebook = notebooks.get(finding.path)
    return finding.line if notebook is None else notebook.cell_position(finding.line)[1]


def file_region(finding: Finding, notebooks: Mapping[str, Any]) -> Tuple[int, int, int, int]:
    """Start and end line and column in the file as stored: in a notebook, inside its JSON text,
    where the cell's source string holds the code (what code hosts show for an .ipynb file)."""
    notebook = notebooks.get(finding.path)
    if notebook is None:
        return finding.line, finding.column, finding.end_line, finding.end_column
    return (*notebook.file_position(finding.line, finding.column),
            *notebook.file_position(finding.end_line, finding.end_column))


def cell_fields(finding: Finding, notebooks: Mapping[str, Any]) -> Dict[str, Any]:
    """A finding as JSON data; in a notebook with `cell` and `end_cell`, its lines counted within the
    cell, and so are its fix's edits (each with its `cell`)."""
    data = finding.to_dict()
    notebook = notebooks.get(finding.path)
    if notebook is None:
        return data
    data["cell"], data["line"] = notebook.cell_position(finding.line)
    data["end_cell"], data["end_line"] = notebook.cell_position(finding.end_line)
    if finding.fix:
        edits = []
        for edit in finding.fix.get("edits", []):
            edit = dict(edit)
            edit["cell"], edit["line"] = notebook.cell_position(edit["line"])
            edit["end_cell"], edit["end_line"] = notebook.cell_position(edit["end_line"])
            edits.append(edit)
        data["fix"] = {**finding.fix, "edits": edits}
    return data
