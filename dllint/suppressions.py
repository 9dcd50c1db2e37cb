"""Suppression comments: `# dllint: ignore[DL101]`, `# noqa: DL101`, `# dllint: skip-file`, ...

Comments are found with the tokenize module (no second parse): a comment on the first line of a
statement that spans several lines covers the whole statement; any other covers its own line.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from dllint.findings import Finding
from dllint.lines import split_lines

UNUSED_CODE = "DL998"

_DLLINT = re.compile(r"#\s*dllint\s*:\s*(?P<verb>skip-file|ignore-file|ignore)(?![\w-])"
                     r"(?:\s*\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
# flake8's grammar: `# noqa`, `# noqa: E501,W291`, `# noqa:E501 W291`.
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_MARKERS = re.compile(r"dllint|noqa", re.IGNORECASE)
_DL_CODE = re.compile(r"^DL\d+$")


@dataclass
class Suppression:
    """One directive in one comment."""

    text: str  # as written, e.g. `# dllint: ignore[DL101]`
    line: int
    column: int  # 1-based, of the directive's `#`
    end_column: int
    codes: Optional[Tuple[str, ...]]  # None: every code
    scope: str  # "line", "file" or "skip-file"
    first_line: int = 0  # the lines it covers (line-level only)
    last_line: int = 0
    used_codes: Set[str] = field(default_factory=set)
    used: bool = False
    report_unused: bool = True  # a bare `# noqa` may be meant for another tool

    def matches(self, code: str) -> bool:
        return self.codes is None or code in self.codes

    def describe(self) -> str:
        where = "in this file" if self.scope != "line" else f"on line {self.line}"
        return f"`{self.text}` {where}"


@dataclass
class FileSuppressions:
    skip_file: Optional[Suppression] = None
    file_level: List[Suppression] = field(default_factory=list)
    by_line: Dict[int, List[Suppression]] = field(default_factory=dict)

    def all(self) -> List[Suppression]:
        seen: Dict[int, Suppression] = {}
        for suppression in [*self.file_level, *(s for group in self.by_line.values() for s in group)]:
            seen[id(suppression)] = suppression
        return sorted(seen.values(), key=lambda s: (s.line, s.column))


def _codes(raw: Optional[str]) -> List[str]:
    return [code.upper() for code in re.split(r"[\s,]+", raw or "") if code]


def _directives(comment: str, line: int, column: int) -> List[Suppression]:
    """The suppressions written in one comment token that starts at (line, 0-based column)."""
    found = []
    for match in _DLLINT.finditer(comment):
        verb = match.group("verb").lower()
        raw = match.group("codes")
        codes = tuple(_codes(raw)) if raw is not None else None
        scope = {"ignore": "line", "ignore-file": "file", "skip-file": "skip-file"}[verb]
        found.append(Suppression(match.group(0), line, column + match.start() + 1, column + match.end() + 1,
                                 None if scope == "skip-file" else codes, scope))
    for match in _NOQA.finditer(comment):
        raw = match.group("codes")
        if raw is None:
            found.append(Suppression(match.group(0).rstrip(":"), line, column + match.start() + 1,
                                     column + match.end() + 1, None, "line", report_unused=False))
            continue
        ours = tuple(code for code in _codes(raw) if _DL_CODE.match(code))
        # `# noqa: E501` belongs to flake8 or ruff alone.
        if ours:
            found.append(Suppression(match.group(0), line, column + match.start() + 1, column + match.end() + 1,
                                     ours, "line"))
    return found


def _comments_with_spans(source: str) -> List[Tuple[str, int, int, int, int]]:
    """(comment, line, column, first covered line, last covered line) for every comment."""
    comments = []
    pending: List[Tuple[str, int, int]] = []  # comments on the first line of the current statement
    statement_start: Optional[int] = None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        kind = token.type
        if kind == tokenize.COMMENT:
            line, column = token.start
            if statement_start == line:
                pending.append((token.string, line, column))
            else:
                comments.append((token.string, line, column, line, line))
        elif kind == tokenize.NEWLINE:
            end = token.start[0]
            comments.extend((text, line, column, line, end) for text, line, column in pending)
            pending = []
            statement_start = None
        elif kind in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            continue
        elif kind == tokenize.ENDMARKER:
            break
        elif statement_start is None:
            statement_start = token.start[0]
    comments.extend((text, line, column, line, line) for text, line, column in pending)
    return comments


def _comments_by_scan(source: str) -> List[Tuple[str, int, int, int, int]]:
    # For files tokenize rejects (they are reported as DL000): a plain text scan, line by line.
    comments = []
    for number, text in enumerate(split_lines(source), start=1):
        position = text.find("#")
        if position >= 0:
            comments.append((text[position:], number, position, number, number))
    return comments


def parse_suppressions(source: str) -> FileSuppressions:
    """Every suppression in `source`."""
    result = FileSuppressions()
    if not _MARKERS.search(source):
        return result
    try:
        comments = _comments_with_spans(source)
    except (tokenize.TokenError, SyntaxError, ValueError):
        comments = _comments_by_scan(source)
    for text, line, column, first, last in comments:
        for suppression in _directives(text, line, column):
            if suppression.scope == "skip-file":
                result.skip_file = result.skip_file or suppression
            elif suppression.scope == "file":
                result.file_level.append(suppression)
            else:
                suppression.first_line, suppression.last_line = first, last
                for covered in range(first, last + 1):
                    result.by_line.setdefault(covered, []).append(suppression)
    return result


@dataclass
class Outcome:
    findings: List[Finding]  # what is still reported, with DL998 findings added
    suppressed: List[Tuple[Finding, str]]  # (finding, what silenced it)


def apply_per_file_ignores(findings: Iterable[Finding],
                           ignored_codes_for: Callable[[str], Tuple[Sequence[str], Sequence[str]]]) -> Outcome:
    """Drop findings whose file matches a per-file-ignores glob listing their code."""
    cache: Dict[str, Tuple[Sequence[str], Sequence[str]]] = {}
    kept: List[Finding] = []
    suppressed: List[Tuple[Finding, str]] = []
    for finding in findings:
        if finding.path not in cache:
            cache[finding.path] = ignored_codes_for(finding.path)
        codes, patterns = cache[finding.path]
        if finding.code in codes:
            suppressed.append((finding, f"per-file-ignores {', '.join(repr(p) for p in patterns)}"))
        else:
            kept.append(finding)
    return Outcome(kept, suppressed)


def apply_suppressions(findings: Iterable[Finding], sources: Mapping[str, Optional[str]],
                       active_codes: Iterable[str], warn_unused: bool = False) -> Outcome:
    """Silence the findings that a comment in their file covers; with `warn_unused`, report each
    suppression that silenced nothing as DL998 (when DL998 is among `active_codes`)."""
    active = set(active_codes)
    parsed: Dict[str, FileSuppressions] = {}

    def suppressions_of(path: str) -> FileSuppressions:
        if path not in parsed:
            source = sources.get(path)
            parsed[path] = parse_suppressions(source) if source is not None else FileSuppressions()
        return parsed[path]

    kept: List[Finding] = []
    suppressed: List[Tuple[Finding, str]] = []
    for finding in findings:
        in_file = suppressions_of(finding.path)
        matching = []
        if in_file.skip_file is not None:
            matching.append(in_file.skip_file)
        matching.extend(s for s in in_file.file_level if s.matches(finding.code))
        matching.extend(s for s in in_file.by_line.get(finding.line, ()) if s.matches(finding.code))
        if not matching:
            kept.append(finding)
            continue
        for suppression in matching:
            suppression.used = True
            suppression.used_codes.add(finding.code)
        suppressed.append((finding, matching[0].describe()))

    if warn_unused and UNUSED_CODE in active:
        from dllint import registry

        known = {rule.code for rule in registry.all_rules()}
        for path in sources:
            in_file = suppressions_of(path)
            if in_file.skip_file is not None:
                continue  # a skipped file reports nothing, not even its stale comments
            for suppression in in_file.all():
                message = _unused_message(suppression, known, active)
                if not message:
                    continue
                unused = _unused_finding(path, suppression, message)
                # `ignore-file[DL998]`, or DL998 named on that line, keeps a suppression on purpose.
                keepers = [s for s in [*in_file.file_level, *in_file.by_line.get(suppression.line, ())]
                           if s.codes and UNUSED_CODE in s.codes]
                if keepers:
                    suppressed.append((unused, keepers[0].describe()))
                else:
                    kept.append(unused)
    return Outcome(sorted(kept), suppressed)


def _unused_message(suppression: Suppression, known: Set[str], active: Set[str]) -> Optional[str]:
    if not suppression.report_unused:
        return None
    where = "in this file" if suppression.scope == "file" else "on this line"
    if suppression.codes is None:
        if suppression.used:
            return None
        return f"`{suppression.text}` silences nothing: no finding {where}; remove the comment"
    unknown = [c for c in suppression.codes if c not in known]
    # A code that is not selected in this run might still match in a run that selects it.
    unused = [c for c in suppression.codes
              if c in active and c not in suppression.used_codes and c != UNUSED_CODE]
    if not unknown and not unused:
        return None
    reasons = []
    if unknown:
        verb = "is not a dllint rule" if len(unknown) == 1 else "are not dllint rules"
        reasons.append(f"{', '.join(unknown)} {verb}")
    if unused:
        reasons.append(f"no {', '.join(unused)} finding {where}")
    stale = unknown + unused
    if set(stale) == set(suppression.codes):
        return f"`{suppression.text}` silences nothing: {'; '.join(reasons)}; remove the comment"
    return (f"{', '.join(stale)} in `{suppression.text}` silences nothing: {'; '.join(reasons)}; "
            f"remove {', '.join(stale)} from the comment")


def _unused_finding(path: str, suppression: Suppression, message: str) -> Finding:
    from dllint import registry

    info = registry.get_rule(UNUSED_CODE).info
    return Finding(path, suppression.line, suppression.column, suppression.line, suppression.end_column,
                   info.code, info.name, info.severity, message)
