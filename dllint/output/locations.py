"""Repository-relative paths and stable fingerprints, shared by the reports that code hosts read."""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Mapping, Optional, Sequence

from dllint.findings import Finding
from dllint.lines import split_lines


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
    lines = split_lines(text)
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
