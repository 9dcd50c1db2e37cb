"""A JSON list of finding objects in the same order as the text output; `jsonl` writes one per line.

With --show-suppressed the silenced findings follow, each with a `suppressed_by` field.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions


def _objects(findings: Sequence[Finding], options: OutputOptions) -> List[Dict[str, Any]]:
    objects = [f.to_dict() for f in findings]
    for finding, reason in options.suppressed:
        objects.append({**finding.to_dict(), "suppressed_by": reason})
    return objects


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    return json.dumps(_objects(findings, options), indent=2) + "\n"


def format_lines(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    return "".join(json.dumps(item) + "\n" for item in _objects(findings, options))
