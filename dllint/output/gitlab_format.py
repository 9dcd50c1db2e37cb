"""GitLab Code Quality report: a JSON array that merge requests show as a code quality widget."""

from __future__ import annotations

import json
from typing import Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import file_region, fingerprints, repository_path, shown_position

_SEVERITIES = {"error": "major", "warning": "minor", "info": "info"}


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    prints = fingerprints(findings, options.sources, options.repository_root)
    issues = []
    for index, finding in enumerate(findings):
        line, _, end_line, _ = file_region(finding, options.notebooks)
        where = f" ({shown_position(finding, options.notebooks)})" if finding.path in options.notebooks else ""
        issues.append({
            "type": "issue",
            "description": f"{finding.code} [{finding.name}] {finding.message}{where}",
            "check_name": finding.code,
            "categories": ["Bug Risk"],
            "fingerprint": prints[index],
            "severity": _SEVERITIES.get(finding.severity, "major"),
            "location": {
                "path": repository_path(finding.path, options.repository_root),
                "lines": {"begin": line, "end": end_line},
            },
        })
    return json.dumps(issues, indent=2) + "\n"
