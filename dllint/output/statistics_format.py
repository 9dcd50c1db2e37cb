"""--statistics: how many findings each rule has, and how many of them --fix would fix."""

from __future__ import annotations

import json
from typing import Dict, List, Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions, is_fixable


def rule_counts(findings: Sequence[Finding], options: OutputOptions) -> List[Dict[str, object]]:
    """One entry per rule with findings, most findings first."""
    counts: Dict[str, Dict[str, object]] = {}
    for finding in findings:
        entry = counts.setdefault(finding.code, {"code": finding.code, "name": finding.name, "count": 0,
                                                 "fixable": 0})
        entry["count"] += 1  # type: ignore[operator]
        entry["fixable"] += int(is_fixable(finding, options.unsafe_fixes))  # type: ignore[operator]
    return sorted(counts.values(), key=lambda entry: (-entry["count"], entry["code"]))  # type: ignore[operator]


def format_statistics(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions,
                      output_format: str) -> str:
    entries = rule_counts(findings, options)
    if output_format == "json":
        return json.dumps(entries, indent=2) + "\n"
    if not entries:
        return ""
    count_width = max(len(str(e["count"])) for e in entries)
    name_width = max(len(str(e["name"])) for e in entries)
    lines = []
    for entry in entries:
        fixable = f"{entry['fixable']} fixable" if entry["fixable"] else ""
        lines.append(f"{entry['count']:>{count_width}}  {entry['code']}  {entry['name']:<{name_width}}  {fixable}"
                     .rstrip())
    return "".join(line + "\n" for line in lines)
