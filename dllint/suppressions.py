"""Suppression comments: `# dllint: ignore[DL101]`, `# noqa: DL101`, `# dllint: skip-file`, ...

Comments are found with the tokenize module (no second parse): a comment on the first line of a
statement that spans several lines covers the whole statement; any other covers its own line. Lines
that cannot end in a comment (inside a multi-line string, or continued with a backslash) are covered
by a comment on the next line that can, as in ruff.
"""

from __future__ import annotations

import bisect
import io
import re
import tokenize
from dataclasses import dataclass, field, replace
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


def _code_of(written: str) -> str:
    """A code as written in a comment, or the code of a rule name (`missing-zero-grad`)."""
    from dllint.config import codes_by_name

    return codes_by_name().get(written.lower(), written.upper())


def _codes(raw: Optional[str]) -> List[str]:
    return [_code_of(code) for code in re.split(r"[\s,]+", raw or "") if code]


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
    pending: List[Tuple[str, int, int, int]] = []  # comments on the first line of the current statement
    statement_start: Optional[int] = None
    last_line_end = 0  # the last line that ended with a line break token (so could hold a comment)
    # newline=None: a lone CR ends a line, as it does for Python (columns within a line are unchanged).
    for token in tokenize.generate_tokens(io.StringIO(source, newline=None).readline):
        kind = token.type
        if kind == tokenize.COMMENT:
            line, column = token.start
            # The lines since the last line break token cannot hold a comment: this one covers them.
            first = min(last_line_end + 1, line)
            if statement_start == line:
                pending.append((token.string, line, column, first))
            else:
                comments.append((token.string, line, column, first, line))
        elif kind == tokenize.NEWLINE:
            end = token.start[0]
            comments.extend((text, line, column, first, end) for text, line, column, first in pending)
            pending = []
            statement_start = None
            last_line_end = end
        elif kind == tokenize.NL:
            last_line_end = token.start[0]
        elif kind in (tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
            continue
        elif kind == tokenize.ENDMARKER:
            break
        elif statement_start is None:
            statement_start = token.start[0]
    comments.extend((text, line, column, first, line) for text, line, column, first in pending)
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
                    kept.append(replace(unused, fix=_removal_fix(sources[path], suppression, known, active)))
    return Outcome(sorted(kept), suppressed)


def _unused_message(suppression: Suppression, known: Set[str], active: Set[str]) -> Optional[str]:
    if not suppression.report_unused:
        return None
    where = "in this file" if suppression.scope == "file" else "on this line"
    if suppression.codes is None:
        if suppression.used:
            return None
        return f"`{suppression.text}` silences nothing: no finding {where}; remove the comment."
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
    # A noqa that also holds other tools' codes (`# noqa: DL101, E501`) keeps them: only ours go.
    foreign = [c for c in _codes(_NOQA_CODE_LIST.search(suppression.text).group("codes"))
               if not _DL_CODE.match(c)] if _NOQA.fullmatch(suppression.text) else []
    if set(stale) == set(suppression.codes) and not foreign:
        return f"`{suppression.text}` silences nothing: {'; '.join(reasons)}; remove the comment."
    return (f"{', '.join(stale)} in `{suppression.text}` silences nothing: {'; '.join(reasons)}; "
            f"remove {', '.join(stale)} from the comment.")


def _unused_finding(path: str, suppression: Suppression, message: str) -> Finding:
    from dllint import registry

    info = registry.get_rule(UNUSED_CODE).info
    return Finding(path, suppression.line, suppression.column, suppression.line, suppression.end_column,
                   info.code, info.name, info.severity, message)


def _stale_codes(suppression: Suppression, known: Set[str], active: Set[str]) -> Optional[Set[str]]:
    """The codes of a suppression that silence nothing; None when the whole comment does."""
    if suppression.codes is None:
        return None
    stale = {c for c in suppression.codes
             if c not in known or (c in active and c not in suppression.used_codes and c != UNUSED_CODE)}
    return None if stale >= set(suppression.codes) else stale


# The code list of a directive: inside `ignore[...]`, or after `noqa:`.
_DLLINT_CODE_LIST = re.compile(r"\[(?P<codes>[^\]]*)\]")
_NOQA_CODE_LIST = re.compile(r":\s*(?P<codes>.*)$")


def _removal_fix(source: Optional[str], suppression: Suppression, known: Set[str],
                 active: Set[str]) -> Optional[Dict[str, object]]:
    """DL998's fix: drop the stale codes from the directive, or the directive when nothing in it is used
    (its whole line when the line holds nothing else). Other comments on the line stay."""
    lines = split_lines(source or "")
    if not 0 < suppression.line <= len(lines):
        return None
    line = lines[suppression.line - 1]
    content = line.rstrip("\r\n")
    start, end = suppression.column - 1, suppression.end_column - 1
    directive = content[start:end]
    stale = _stale_codes(suppression, known, active)
    if stale is None and suppression.codes is not None:
        stale = set(suppression.codes)  # all of ours; a noqa may still hold other tools' codes
    if stale is not None:
        listing = (_NOQA_CODE_LIST if directive.lstrip("#").strip().lower().startswith("noqa")
                   else _DLLINT_CODE_LIST).search(directive)
        if listing is None:
            return None
        written = [w for w in re.split(r"[\s,]+", listing.group("codes")) if w]
        kept = [w for w in written if _code_of(w) not in stale]
        # A noqa keeps the other tools' codes (`# noqa: DL101, E501` -> `# noqa: E501`).
        if kept:
            new = directive[:listing.start("codes")] + ", ".join(kept) + directive[listing.end("codes"):]
            return _fix(f"remove {', '.join(sorted(stale))} from the comment",
                        suppression.line, start + 1, suppression.line, end + 1, new)
    before, after = content[:start], content[end:]
    if after.strip():
        # Another comment or a reason follows: keep it, as a comment.
        tail = after.lstrip()
        replacement = "" if tail.startswith("#") else "# "
        return _fix("remove the unused suppression", suppression.line, start + 1, suppression.line,
                    end + len(after) - len(tail) + 1, replacement)
    if not before.strip():  # the comment is all there is on its line
        return _fix("remove the unused suppression", suppression.line, 1, *_after_line(lines, suppression.line), "")
    return _fix("remove the unused suppression", suppression.line, len(before.rstrip()) + 1, suppression.line,
                len(content) + 1, "")


def _after_line(lines: Sequence[str], number: int) -> Tuple[int, int]:
    """The position just past line `number` and its line break."""
    if number < len(lines) or lines[number - 1] != lines[number - 1].rstrip("\r\n"):
        return number + 1, 1
    return number, len(lines[number - 1]) + 1


def _fix(message: str, line: int, column: int, end_line: int, end_column: int, content: str) -> Dict[str, object]:
    return {"applicability": "safe", "message": message,
            "edits": [{"line": line, "column": column, "end_line": end_line, "end_column": end_column,
                       "content": content}]}


# Findings that a comment cannot or should not silence: the file does not parse, the suppression
# itself is stale (--fix removes it), dllint crashed.
_NOT_SILENCED_BY_ADD_NOQA = ("DL000", UNUSED_CODE, "DL999")


def add_suppression_comments(source: str, findings: Iterable[Finding]) -> Tuple[str, int, int]:
    """`source` with `# dllint: ignore[CODES]` on every line with a finding, merged into a dllint
    comment already there; (new text, comments added or extended, findings left without one).

    A finding on a line that cannot end in a comment (inside a multi-line string, before a backslash)
    gets the comment on the next line that can, which covers it."""
    wanted = [f for f in findings if f.code not in _NOT_SILENCED_BY_ADD_NOQA]
    if not wanted:
        return source, 0, 0
    try:
        slots, comments = _comment_slots(source)
    except (tokenize.TokenError, SyntaxError, ValueError):
        return source, 0, len(wanted)
    codes_by_line: Dict[int, Set[str]] = {}
    ordered = sorted(slots)
    missed = 0
    for finding in wanted:
        # A line that cannot end in a comment is covered by one on the next line that can.
        at = bisect.bisect_left(ordered, finding.line)
        if at == len(ordered):
            missed += 1
            continue
        codes_by_line.setdefault(ordered[at], set()).add(finding.code)
    lines = split_lines(source)
    for number, codes in codes_by_line.items():
        line = lines[number - 1]
        content = line.rstrip("\r\n")
        ending = line[len(content):]
        lines[number - 1] = _with_codes(content, comments.get(number), sorted(codes)) + ending
    return "".join(lines), len(codes_by_line), missed


def _with_codes(content: str, comment_column: Optional[int], codes: List[str]) -> str:
    if comment_column is not None:
        comment = content[comment_column:]
        for match in _DLLINT.finditer(comment):
            if match.group("verb").lower() == "ignore" and match.group("codes") is not None:
                listing_start = comment_column + match.start("codes")
                listing = content[listing_start:comment_column + match.end("codes")]
                written = [w for w in re.split(r"[\s,]+", listing) if w]
                present = {_code_of(w) for w in written}
                merged = written + [c for c in codes if c not in present]
                return content[:listing_start] + ", ".join(merged) + content[listing_start + len(listing):]
    code_end = len(content.rstrip())
    return f"{content[:code_end]}  # dllint: ignore[{', '.join(codes)}]{content[code_end:]}"


def _comment_slots(source: str) -> Tuple[Set[int], Dict[int, int]]:
    """(lines that may end in a comment, column of the comment on each line that has one)."""
    slots: Set[int] = set()
    comments: Dict[int, int] = {}
    for token in tokenize.generate_tokens(io.StringIO(source, newline=None).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
        elif token.type in (tokenize.NEWLINE, tokenize.NL):
            slots.add(token.start[0])
    return slots, comments


def suppression_comment_edits(source: str, findings: Iterable[Finding]) -> Tuple[List[Tuple[int, int, str]], int, int]:
    """What add_suppression_comments writes, as (begin, end, new text) offsets in `source` (for files
    whose text is not the source itself, such as notebooks); (edits, comments, findings left without)."""
    text, added, missed = add_suppression_comments(source, findings)
    edits = []
    offset = 0
    # Comments only go inside lines, so the two texts have the same lines.
    for old, new in zip(split_lines(source), split_lines(text)):
        if old != new:
            same_start = 0
            while same_start < min(len(old), len(new)) and old[same_start] == new[same_start]:
                same_start += 1
            same_end = 0
            while same_end < min(len(old), len(new)) - same_start and old[-1 - same_end] == new[-1 - same_end]:
                same_end += 1
            edits.append((offset + same_start, offset + len(old) - same_end, new[same_start:len(new) - same_end]))
        offset += len(old)
    return edits, added, missed
