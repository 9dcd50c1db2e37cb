"""`path:line:col: CODE [name] message`, one line per finding; --show-source adds the line and a caret."""

from __future__ import annotations

from typing import List, Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import source_line

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_SEVERITY_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}
_CARET_COLOR = "\033[1;31m"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


def _headline(finding: Finding, color: bool) -> str:
    where = f"{_paint(finding.path, _BOLD, color)}:{finding.line}:{finding.column}:"
    code = _paint(finding.code, _SEVERITY_COLORS.get(finding.severity, _BOLD), color)
    name = _paint(f"[{finding.name}]", _DIM, color)
    return f"{where} {code} {name} {finding.message}"


def _excerpt(finding: Finding, options: OutputOptions) -> List[str]:
    text = source_line(options.sources, finding)
    if text is None:
        return []
    text = text.rstrip("\r\n")
    start = min(max(finding.column - 1, 0), len(text))
    end = finding.end_column - 1 if finding.end_line == finding.line else len(text.rstrip())
    width = max(min(end, len(text)) - start, 1)
    # Tabs stay tabs in the caret line so that the caret lines up whatever the tab width.
    padding = "".join(ch if ch == "\t" else " " for ch in text[:start])
    number = str(finding.line)
    gutter = " " * len(number)
    caret = _paint("^" * width, _CARET_COLOR, options.color)
    return [f"  {number} | {text}", f"  {gutter} | {padding}{caret}"]


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    lines: List[str] = []
    for finding in findings:
        lines.append(_headline(finding, options.color))
        if options.show_source:
            lines.extend(_excerpt(finding, options))
    for finding, reason in options.suppressed:
        lines.append(f"{_headline(finding, options.color)} (suppressed by {reason})")
        if options.show_source:
            lines.extend(_excerpt(finding, options))
    return "".join(line + "\n" for line in lines)


def summary_line(problems: int, files_with_problems: int, files_checked: int, suppressed: int = 0) -> str:
    silenced = f"; {suppressed} suppressed" if suppressed else ""
    checked = f"{files_checked} file{'' if files_checked == 1 else 's'} checked"
    if problems == 0:
        return f"All checks passed ({checked}{silenced})."
    noun = "problem" if problems == 1 else "problems"
    files = "file" if files_with_problems == 1 else "files"
    return f"Found {problems} {noun} in {files_with_problems} {files} ({checked}{silenced})."
