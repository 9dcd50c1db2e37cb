"""Joining the run's observations to the static findings: one verdict per finding, and the runtime-only
findings. Plain Python (the parent side never imports torch).

An observation confirms a finding of the same code when one of its sites lies on the finding's
statement (a multi-line statement counts as one), or, for observations whose evidence cannot name the
exact line (a kept loss graph, a detached loss), on a statement of the same function when that function
holds only that one finding of the code.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from dllint.findings import Finding
from dllint.runtime import checks
from dllint.runtime.observations import (CONFIRMED, FOUND, NOT_CHECKED, NOT_REACHED, NOT_REPRODUCED, Observation,
                                         RunOutcome)

# Rules with a runtime check (each check declares its CODES). Findings of other rules get NOT CHECKED.
CHECKED_CODES = checks.checked_codes()
RUNTIME_CODES = checks.all_runtime_codes()
# Names of rules the runtime observes, for runtime findings when the static rule is not installed.
RULE_NAMES = {"DL101": ("missing-zero-grad", "error"), "DL102": ("zero-grad-before-step", "error"),
              "DL104": ("loss-accumulates-graph", "warning"), "DL201": ("softmax-into-cross-entropy", "error"),
              "DL202": ("sigmoid-into-bce-logits", "error"), "DL203": ("probs-into-nll-loss", "error"),
              "DL301": ("missing-eval", "error"), "DL302": ("missing-train-after-eval", "error"),
              "DL303": ("functional-dropout-always-on", "error"), "DL401": ("clamp-kills-gradient", "warning"),
              "DL402": ("detached-loss-path", "error"), "DL501": ("module-not-registered", "error"),
              "DL503": ("unused-submodule", "warning"), "DL504": ("reused-module-instance", "error")}
# Why a reached line may show nothing for these rules.
UNOBSERVABLE = checks.unobservable()
_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
# Severities of runtime findings that make the exit status 1 (info never does; an RT901 network access
# counts like any other error).
COUNTED_SEVERITIES = ("error", "warning")


@dataclass
class Judged:
    """A static finding with its verdict, or a runtime-only finding (verdict FOUND)."""

    finding: Finding
    verdict: str
    evidence: str

    def to_dict(self) -> Dict[str, object]:
        data = self.finding.to_dict()
        data["verdict"] = self.verdict
        data["evidence"] = self.evidence
        return data


class SourceIndex:
    """Statement and function spans of source files, parsed once each."""

    def __init__(self) -> None:
        self._statements: Dict[str, Dict[int, Tuple[int, int]]] = {}
        self._functions: Dict[str, List[Tuple[int, int]]] = {}

    def _load(self, path: str) -> None:
        if path in self._statements:
            return
        statements: Dict[int, Tuple[int, int]] = {}
        functions: List[Tuple[int, int]] = []
        try:
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
            tree = None
        if tree is not None:
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    functions.append((node.lineno, getattr(node, "end_lineno", node.lineno) or node.lineno))
            self._spans(tree, statements)
        self._statements[path] = statements
        self._functions[path] = functions

    def _spans(self, node, statements: Dict[int, Tuple[int, int]]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                start = child.lineno
                body = getattr(child, "body", None)
                if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                    # A compound statement: its own lines are the header (decorators to the colon).
                    decorators = getattr(child, "decorator_list", [])
                    start = min([start] + [d.lineno for d in decorators])
                    end = max(start, body[0].lineno - 1)
                else:
                    end = getattr(child, "end_lineno", None) or child.lineno
                for line in range(start, end + 1):
                    statements[line] = (start, end)
            self._spans(child, statements)

    def statement(self, path: str, line: int) -> Tuple[int, int]:
        self._load(path)
        return self._statements[path].get(line, (line, line))

    def statement_lines(self, path: str, line: int) -> List[int]:
        start, end = self.statement(path, line)
        return list(range(start, end + 1))

    def function(self, path: str, line: int) -> Tuple[int, int]:
        """The innermost function around the line; (0, 0) stands for the module's top-level code."""
        self._load(path)
        enclosing = [span for span in self._functions[path] if span[0] <= line <= span[1]]
        return min(enclosing, key=lambda span: span[1] - span[0]) if enclosing else (0, 0)


def _real(path: str) -> str:
    return os.path.realpath(path)


def display_path(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def coverage_targets(findings: Sequence[Finding], index: SourceIndex) -> Dict[str, List[int]]:
    """The lines whose execution the child watches: every line of every finding's statement."""
    targets: Dict[str, Set[int]] = {}
    for finding in findings:
        path = _real(finding.path)
        targets.setdefault(path, set()).update(index.statement_lines(path, finding.line))
    return {path: sorted(lines) for path, lines in targets.items()}


def finding_lines(findings: Sequence[Finding], index: SourceIndex) -> Dict[str, Dict[str, List[int]]]:
    """code -> path -> the lines of the statements of that code's findings, for the runtime checks that only
    look at those lines (checked codes only)."""
    lines: Dict[str, Dict[str, Set[int]]] = {}
    for finding in findings:
        if finding.code in CHECKED_CODES:
            path = _real(finding.path)
            lines.setdefault(finding.code, {}).setdefault(path, set()).update(
                index.statement_lines(path, finding.line))
    return {code: {path: sorted(found) for path, found in paths.items()} for code, paths in lines.items()}


class Judge:
    def __init__(self, findings: Sequence[Finding], observations: Sequence[Observation], outcome: RunOutcome,
                 index: SourceIndex, script_path: Optional[str]):
        self.findings = list(findings)
        self.observations = list(observations)
        self.outcome = outcome
        self.index = index
        self.script_path = script_path
        self.reached = {_real(path): set(lines) for path, lines in outcome.reached.items()}
        self.loaded = {_real(path) for path in outcome.loaded_files}
        self.used: Set[int] = set()

    def relevant_findings(self) -> List[Finding]:
        """Findings in files this program loaded (a folder often holds several scripts)."""
        if not self.loaded:
            script = _real(self.script_path) if self.script_path else None
            return [f for f in self.findings if script is None or _real(f.path) == script]
        return [f for f in self.findings if _real(f.path) in self.loaded or _real(f.path) in self.reached]

    def run(self) -> Tuple[List[Judged], List[Judged]]:
        judged = [self._judge(finding) for finding in self.relevant_findings()
                  if finding.code not in ("DL000", "DL999", "DL998")]
        return judged, self._runtime_findings()

    # -- one finding --------------------------------------------------------------------------------

    def _matches(self, observation: Observation, finding: Finding) -> bool:
        if observation.code != finding.code:
            return False
        path = _real(finding.path)
        span = self.index.statement(path, finding.line)
        for site in observation.sites:
            if _real(site[0]) != path:
                continue
            if self.index.statement(path, site[1]) == span:
                return True
            if observation.scope == "function":
                function = self.index.function(path, finding.line)
                if function == self.index.function(path, site[1]):
                    # Several findings of the code in one function: each takes the evidence nearest its line.
                    rivals = [f for f in self.findings if f.code == finding.code and _real(f.path) == path
                              and self.index.function(path, f.line) == function]
                    nearest = min(rivals, key=lambda f: (abs(f.line - site[1]), f.line))
                    if nearest is finding:
                        return True
        return False

    def _was_reached(self, finding: Finding) -> bool:
        path = _real(finding.path)
        lines = self.reached.get(path, set())
        return any(line in lines for line in self.index.statement_lines(path, finding.line))

    def _judge(self, finding: Finding) -> Judged:
        if self.outcome.status in ("error", "no-torch"):
            # Nothing ran, so "never reached" would be misleading.
            return Judged(finding, NOT_CHECKED, "the script could not be run")
        matching = [(i, o) for i, o in enumerate(self.observations) if self._matches(o, finding)]
        for i, _ in matching:
            self.used.add(i)
        confirmed = [o for _, o in matching if o.confirmed and not o.summary]
        if confirmed:
            return Judged(finding, CONFIRMED, "; ".join(_unique(o.evidence for o in confirmed)))
        reached = self._was_reached(finding) or bool(matching)
        steps = self.outcome.steps
        if finding.code not in CHECKED_CODES:
            where = "the line ran" if reached else "the line never ran"
            return Judged(finding, NOT_CHECKED, f"no runtime check exists for {finding.code}; {where}")
        if not reached:
            return Judged(finding, NOT_REACHED, f"this line never ran ({self._run_extent()})")
        if matching:
            return Judged(finding, NOT_REPRODUCED, "; ".join(_unique(o.evidence for _, o in matching)))
        general = [o for o in self.observations if o.code == finding.code and o.summary and not o.sites]
        if general:
            return Judged(finding, NOT_REPRODUCED, "; ".join(_unique(o.evidence for o in general)))
        why = UNOBSERVABLE.get(finding.code, "the line ran, and the runtime check saw nothing wrong there")
        return Judged(finding, NOT_REPRODUCED, f"{why} ({steps} steps)")

    def _run_extent(self) -> str:
        status, steps = self.outcome.status, self.outcome.steps
        if status == "stopped":
            return f"the run was stopped after {steps} optimizer steps; increase --steps to go further"
        if status == "timeout":
            return f"the run hit the timeout after {steps} optimizer steps"
        if status in ("crashed", "exited"):
            return f"the script ended early ({status}) after {steps} optimizer steps"
        return f"the script ran to its end ({steps} optimizer steps)"

    # -- runtime-only findings ----------------------------------------------------------------------

    def _runtime_findings(self) -> List[Judged]:
        # One finding per code and line: the evidence of several observations there is joined.
        grouped: Dict[Tuple, List[Observation]] = {}
        for i, observation in enumerate(self.observations):
            if i in self.used or observation.summary:
                continue
            site = self._user_site(observation)
            grouped.setdefault((observation.code, site[:2] if site else None), []).append(observation)
        found: List[Judged] = []
        for (code, _), observations in grouped.items():
            first = observations[0]
            site = self._user_site(first)
            name, severity = _name_and_severity(max(observations, key=lambda o: _SEVERITY_RANK.get(
                _name_and_severity(o)[1], 0)))
            evidence = "; ".join(_unique(o.evidence for o in observations))
            path, line, column = site if site else (self.script_path or "", 1, 1)
            finding = Finding(display_path(path), line, column, line, column, code, name, severity, evidence)
            found.append(Judged(finding, FOUND, evidence))
        found.sort(key=lambda j: (j.finding.path, j.finding.line, j.finding.code))
        return found

    @staticmethod
    def _user_site(observation: Observation):
        return observation.sites[0] if observation.sites else None


def _name_and_severity(observation: Observation) -> Tuple[str, str]:
    if observation.code in RUNTIME_CODES:
        name, severity, _ = RUNTIME_CODES[observation.code]
    else:
        name, severity = _rule_name(observation.code)
    if not observation.confirmed:
        severity = "info"
    elif observation.severity:
        severity = observation.severity
    return name, severity


def _rule_name(code: str) -> Tuple[str, str]:
    try:
        from dllint import registry

        rule = registry.get_rule(code)
    except Exception:
        rule = None
    if rule is not None:
        return rule.info.name, rule.info.severity
    return RULE_NAMES.get(code, ("runtime-observation", "warning"))


def _unique(texts) -> List[str]:
    seen: List[str] = []
    for text in texts:
        if text not in seen:
            seen.append(text)
    return seen


def exit_status(outcome: RunOutcome, judged: Sequence[Judged], runtime: Sequence[Judged]) -> int:
    """0 nothing confirmed or found, 1 something confirmed or found, 2 the script could not be run."""
    found = any(j.verdict == CONFIRMED for j in judged) or any(
        j.finding.severity in COUNTED_SEVERITIES for j in runtime)
    if outcome.status in ("error", "no-torch"):
        return 2
    if outcome.status in ("crashed", "exited", "running"):
        return 1 if found else 2
    return 1 if found else 0
