"""GitLab Code Quality report: a JSON array that merge requests show as a code quality widget."""

from __future__ import annotations

import json
from typing import Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import fingerprints, repository_path

_SEVERITIES = {"error": "major", "warning": "minor", "info": "info"}


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    prints = fingerprints(findings, options.sources, options.repository_root)
    issues = []
    for index, finding in enumerate(findings):
        issues.append({
            "type": "issue",
            "description": f"{finding.code} [{finding.name}] {finding.message}",
            "check_name": finding.code,
            "categories": ["Bug Risk"],
            "fingerprint": prints[index],
            "severity": _SEVERITIES.get(finding.severity, "major"),
            "location": {
                "path": repository_path(finding.path, options.repository_root),
                "lines": {"begin": finding.line, "end": finding.end_line},
            },
        })
    return json.dumps(issues, indent=2) + "\n"
