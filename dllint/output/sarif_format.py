"""SARIF 2.1.0, the format code scanning services (GitHub, Azure DevOps, IDE viewers) read."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

from dllint import __version__
from dllint.findings import Finding, RuleInfo
from dllint.output import PROJECT_URL, OutputOptions, rule_url, with_suppressed
from dllint.output.locations import file_region, fingerprints, repository_path
from dllint.pages import read_page

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_ROOT_ID = "SRCROOT"


def _section(page: str, title: str) -> Optional[str]:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", page, re.DOTALL | re.MULTILINE)
    if not match:
        return None
    return " ".join(match.group(1).split()) or None


def _rule(info: RuleInfo) -> Dict[str, Any]:
    page = read_page(info.code)
    descriptor: Dict[str, Any] = {
        "id": info.code,
        "name": info.name,
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": (page and _section(page, "What it does")) or info.summary},
        "helpUri": rule_url(info.code),
        # An opt-in rule is not enabled unless a selection names it.
        "defaultConfiguration": {"level": _LEVELS.get(info.severity, "warning"), "enabled": info.default},
    }
    if page:
        descriptor["help"] = {"text": page, "markdown": page}
    return descriptor


def _location_of(path: str, root: str) -> Dict[str, Any]:
    relative = repository_path(path, root)
    if os.path.isabs(relative):
        return {"artifactLocation": {"uri": Path(relative).as_uri()}}
    return {"artifactLocation": {"uri": quote(relative, errors="surrogateescape"), "uriBaseId": _ROOT_ID}}


def _location(finding: Finding, root: str, notebooks) -> Dict[str, Any]:
    line, column, end_line, end_column = file_region(finding, notebooks)
    location: Dict[str, Any] = {"physicalLocation": {
        **_location_of(finding.path, root),
        "region": {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": end_column},
    }}
    notebook = notebooks.get(finding.path)
    if notebook is not None:
        # SARIF has no cells: the region is the code's place in the notebook's JSON text, which code
        # scanning can show; the cell and the line within it are kept as properties.
        cell, cell_line = notebook.cell_position(finding.line)
        end_cell, end_cell_line = notebook.cell_position(finding.end_line)
        location["properties"] = {"cell": cell, "cellLine": cell_line, "cellColumn": finding.column,
                                  "endCell": end_cell, "endCellLine": end_cell_line,
                                  "endCellColumn": finding.end_column}
    return location


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    root = os.path.abspath(options.repository_root or os.getcwd())
    index_of = {info.code: index for index, info in enumerate(rules)}
    listed = with_suppressed(findings, options.suppressed)
    everything: List[Finding] = [finding for finding, _ in listed]
    prints = fingerprints(everything, options.sources, root)
    reasons = [reason for _, reason in listed]
    results = []
    for index, finding in enumerate(everything):
        result: Dict[str, Any] = {
            "ruleId": finding.code,
            "level": _LEVELS.get(finding.severity, "warning"),
            "message": {"text": finding.message},
            "locations": [_location(finding, root, options.notebooks)],
            "partialFingerprints": {"dllintFingerprint/v1": prints[index]},
        }
        if finding.code in index_of:
            result["ruleIndex"] = index_of[finding.code]
        reason = reasons[index]
        if reason is not None:
            kind = "external" if reason.startswith("per-file-ignores") else "inSource"
            result["suppressions"] = [{"kind": kind, "justification": reason}]
        results.append(result)
    document = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "dllint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": PROJECT_URL,
                "rules": [_rule(info) for info in rules],
            }},
            "invocations": [{
                "executionSuccessful": True,
                # Files not analysed (too large): a notification each, so that they are not taken as clean.
                "toolExecutionNotifications": [
                    {"level": "warning", "message": {"text": f"{path}: {why}"},
                     "locations": [{"physicalLocation": _location_of(path, root)}]}
                    for path, why in options.skipped],
            }],
            "originalUriBaseIds": {_ROOT_ID: {"uri": Path(root).as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"
