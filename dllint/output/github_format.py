"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""

from __future__ import annotations

from typing import Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import file_region, repository_path, shown_position

_COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    lines = []
    for finding in findings:
        command = _COMMANDS.get(finding.severity, "error")
        line, column, end_line, end_column = file_region(finding, options.notebooks)
        title = f"{finding.code} {finding.name}"
        if finding.path in options.notebooks:
            # The annotation sits on the notebook's JSON line; the title says where that is in the cells.
            title += f" ({shown_position(finding, options.notebooks)})"
        properties = {
            "file": repository_path(finding.path, options.repository_root),
            "line": line,
            "col": column,
            "endLine": end_line,
            "endColumn": end_column,
            "title": title,
        }
        joined = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items())
        lines.append(f"::{command} {joined}::{_escape_data(finding.message)}\n")
    return "".join(lines)
