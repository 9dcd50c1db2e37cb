"""A JSON list of finding objects, in the same order as the text output."""

from __future__ import annotations

import json
from typing import Sequence

from dllint.findings import Finding, RuleInfo


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"
