"""A JSON list of finding objects in the same order as the text output; `jsonl` writes one per line.

With --show-suppressed the silenced findings are listed among the others, each with a `suppressed_by` field.
A finding in a notebook has `cell` and `end_cell` (1-based, among all cells), and lines counted within
the cell.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions, with_suppressed
from dllint.output.locations import cell_fields


def _objects(findings: Sequence[Finding], options: OutputOptions) -> List[Dict[str, Any]]:
    notebooks = options.notebooks
    return [cell_fields(finding, notebooks) if reason is None
            else {**cell_fields(finding, notebooks), "suppressed_by": reason}
            for finding, reason in with_suppressed(findings, options.suppressed)]


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    return json.dumps(_objects(findings, options), indent=2) + "\n"


def format_lines(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    return "".join(json.dumps(item) + "\n" for item in _objects(findings, options))
