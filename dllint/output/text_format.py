"""`path:line:col: CODE [name] message` (`nb.ipynb:cell 3:12:5: ...` in a notebook), one line per finding;
--show-source adds the line and a caret."""

from __future__ import annotations

from typing import List, Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions, is_fixable, with_suppressed
from dllint.output.locations import shown_line, shown_position, source_line

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_SEVERITY_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "info": "\033[1;36m"}
_CARET_COLOR = "\033[1;31m"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


# Marks a finding that --fix would fix, as ruff marks it.
FIXABLE_MARKER = "[*]"


def _headline(finding: Finding, options: OutputOptions, fixable: bool = False) -> str:
    color = options.color
    where = f"{_paint(finding.path, _BOLD, color)}:{shown_position(finding, options.notebooks)}:"
    code = _paint(finding.code, _SEVERITY_COLORS.get(finding.severity, _BOLD), color)
    name = _paint(f"[{finding.name}]", _DIM, color)
    marker = f" {FIXABLE_MARKER}" if fixable else ""
    return f"{where} {code} {name}{marker} {finding.message}"


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
    number = str(shown_line(finding, options.notebooks))
    gutter = " " * len(number)
    caret = _paint("^" * width, _CARET_COLOR, options.color)
    return [f"  {number} | {text}", f"  {gutter} | {padding}{caret}"]


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    lines: List[str] = []
    for finding, reason in with_suppressed(findings, options.suppressed):
        if reason is None:
            lines.append(_headline(finding, options, is_fixable(finding, options.unsafe_fixes)))
        else:
            lines.append(f"{_headline(finding, options)} (suppressed by {reason})")
        if options.show_source:
            lines.extend(_excerpt(finding, options))
    return "".join(line + "\n" for line in lines)


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def summary_line(problems: int, files_with_problems: int, files_checked: int, suppressed: int = 0,
                 skipped: int = 0, why_skipped: str = "too large to analyse") -> str:
    """The closing line on stderr. `skipped`: files read but not analysed (too large, a notebook in
    another language), counted in `files_checked` but never "passed"."""
    silenced = f"; {suppressed} suppressed" if suppressed else ""
    left_out = f"; {_files(skipped)} skipped: {why_skipped}" if skipped else ""
    checked = f"{_files(files_checked - skipped)} checked{left_out}"
    if problems == 0:
        lead = "No problems found" if skipped else "All checks passed"
        return f"{lead} ({checked}{silenced})."
    noun = "problem" if problems == 1 else "problems"
    return f"Found {problems} {noun} in {_files(files_with_problems)} ({checked}{silenced})."


def fixable_line(fixable: int, hidden: int, unsafe_fixes: bool) -> str:
    """`[*] N fixable with --fix` (and how many more --unsafe-fixes would fix), or "" when none."""
    flag = "--fix --unsafe-fixes" if unsafe_fixes else "--fix"
    parts = [f"{FIXABLE_MARKER} {fixable} fixable with {flag}"] if fixable else []
    if hidden:
        parts.append(f"{hidden} more with --fix --unsafe-fixes" if fixable else
                     f"{hidden} fixable with --fix --unsafe-fixes")
    return "; ".join(parts) + "." if parts else ""
