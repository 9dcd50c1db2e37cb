"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request."""

from __future__ import annotations

from typing import Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import repository_path

_COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    lines = []
    for finding in findings:
        command = _COMMANDS.get(finding.severity, "error")
        properties = {
            "file": repository_path(finding.path, options.repository_root),
            "line": finding.line,
            "col": finding.column,
            "endLine": finding.end_line,
            "endColumn": finding.end_column,
            "title": f"{finding.code} {finding.name}",
        }
        joined = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items())
        lines.append(f"::{command} {joined}::{_escape_data(finding.message)}\n")
    return "".join(lines)
