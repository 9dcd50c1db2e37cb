"""Formatters: plain findings and rule metadata in, text out. They know nothing of checks or libcst."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from dllint.findings import Finding, RuleInfo

# Where dllint lives; rule links (SARIF helpUri, editors) point at the pages in its rules/ folder.
PROJECT_URL = "https://github.com/dllint/dllint"


def rule_url(code: str) -> str:
    return f"{PROJECT_URL}/blob/main/rules/{code}.md"


@dataclass
class OutputOptions:
    """What a formatter may know beyond the findings: plain data, never a parse tree."""

    show_source: bool = False
    color: bool = False
    # Source text by finding path, for --show-source and for fingerprints that survive moved lines.
    sources: Mapping[str, Optional[str]] = field(default_factory=dict)
    # Paths in SARIF, GitHub and GitLab reports are relative to it (the git top level, else the cwd).
    repository_root: Optional[str] = None
    # (finding, what silenced it), listed only with --show-suppressed.
    suppressed: Sequence[Tuple[Finding, str]] = ()
    # Every file linted, so that reports such as JUnit can show the clean ones as passing.
    checked_paths: Sequence[str] = ()
    # Whether --unsafe-fixes is on: which fixes --fix would apply, for the text format's `[*]` marker.
    unsafe_fixes: bool = False
    # Notebooks by finding path (dllint.notebook.Notebook): their findings are placed in cells.
    notebooks: Mapping[str, object] = field(default_factory=dict)
    # (path, why) of the files that were not analysed (too large): shown as skipped, never as passed.
    skipped: Sequence[Tuple[str, str]] = ()


def is_fixable(finding: Finding, unsafe_fixes: bool) -> bool:
    """Whether --fix (with --unsafe-fixes when `unsafe_fixes`) would fix `finding`."""
    return bool(finding.fix) and (unsafe_fixes or finding.fix.get("applicability") == "safe")


def with_suppressed(findings: Sequence[Finding],
                    suppressed: Sequence[Tuple[Finding, str]]) -> List[Tuple[Finding, Optional[str]]]:
    """Reported findings (reason None) and silenced ones (with what silenced them), in one sorted list."""
    return sorted([*((f, None) for f in findings), *suppressed], key=lambda pair: pair[0])


Formatter = Callable[[Sequence[Finding], Sequence[RuleInfo], OutputOptions], str]

FORMAT_NAMES: List[str] = ["text", "json", "jsonl", "sarif", "github", "gitlab", "junit"]


# Each format's module and function: only the one a run asks for is imported (a warm run's cost is
# mostly Python's start and imports; the SARIF and JUnit modules pull in pathlib, urllib and XML).
_FORMATTERS: Dict[str, Tuple[str, str]] = {
    "text": ("text_format", "format_findings"), "json": ("json_format", "format_findings"),
    "jsonl": ("json_format", "format_lines"), "sarif": ("sarif_format", "format_findings"),
    "github": ("github_format", "format_findings"), "gitlab": ("gitlab_format", "format_findings"),
    "junit": ("junit_format", "format_findings")}


def _load(name: str) -> Formatter:
    import importlib

    module, function = _FORMATTERS[name]
    return getattr(importlib.import_module(f"dllint.output.{module}"), function)


def get_formatter(name: str) -> Callable[..., str]:
    formatter = _load(name)

    def run(findings: Sequence[Finding], rules: Sequence[RuleInfo], options: Optional[OutputOptions] = None) -> str:
        return formatter(findings, rules, options or OutputOptions())

    return run
