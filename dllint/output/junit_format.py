"""JUnit XML, which most CI systems show as a test report: one suite per file, one case per finding."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Sequence, Tuple

from dllint.findings import Finding, RuleInfo
from dllint.output import OutputOptions
from dllint.output.locations import file_region, shown_position

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)


def format_findings(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: OutputOptions) -> str:
    notebooks = options.notebooks
    by_path: Dict[str, List[Tuple[Finding, str]]] = {}
    for path in options.checked_paths:
        by_path.setdefault(path, [])
    for finding in findings:
        by_path.setdefault(finding.path, []).append((finding, ""))
    for finding, reason in options.suppressed:
        by_path.setdefault(finding.path, []).append((finding, reason))
    skipped = dict(options.skipped)

    root = ElementTree.Element("testsuites", name="dllint")
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for path in sorted(by_path):
        cases = sorted(by_path[path], key=lambda case: case[0])
        suite = ElementTree.SubElement(root, "testsuite", name=_clean(path))
        counts = {"tests": max(len(cases), 1), "failures": sum(1 for _, r in cases if not r),
                  "skipped": sum(1 for _, r in cases if r)}
        if not cases and path in skipped:
            case = ElementTree.SubElement(suite, "testcase", classname=_clean(path), name="dllint", file=_clean(path))
            ElementTree.SubElement(case, "skipped", message=_clean(skipped[path]))
            counts["skipped"] = 1
        elif not cases:
            ElementTree.SubElement(suite, "testcase", classname=_clean(path), name="dllint", file=_clean(path))
        for finding, reason in cases:
            case = ElementTree.SubElement(
                suite, "testcase", classname=_clean(path),
                name=_clean(f"{finding.code} {finding.name} at {finding.path}:{shown_position(finding, notebooks)}"),
                file=_clean(path), line=str(file_region(finding, notebooks)[0]))
            if reason:
                ElementTree.SubElement(case, "skipped", message=_clean(f"suppressed by {reason}"))
            else:
                failure = ElementTree.SubElement(case, "failure", type=finding.code, message=_clean(finding.message))
                failure.text = _clean(f"{finding.path}:{shown_position(finding, notebooks)}: {finding.code} "
                                      f"[{finding.name}] {finding.message}")
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("errors", "0")
    if not by_path:
        suite = ElementTree.SubElement(root, "testsuite", name="dllint", tests="1", failures="0", errors="0",
                                       skipped="0")
        ElementTree.SubElement(suite, "testcase", classname="dllint", name="no problems found")
        totals["tests"] = 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
