"""`path:line:col: CODE [name] message`, one line per finding."""

from __future__ import annotations

from typing import Sequence

from dllint.findings import Finding, RuleInfo


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo]) -> str:
    return "".join(f"{f.path}:{f.line}:{f.column}: {f.code} [{f.name}] {f.message}\n" for f in findings)


def summary_line(problems: int, files_with_problems: int, files_checked: int) -> str:
    if problems == 0:
        return f"All checks passed ({files_checked} files checked)."
    noun = "problem" if problems == 1 else "problems"
    files = "file" if files_with_problems == 1 else "files"
    return f"Found {problems} {noun} in {files_with_problems} {files} ({files_checked} files checked)."
