"""--diff-base REF: the lines added or changed since a git revision, for review bots that comment on
the change under review only.

One `git diff --unified=0 REF` (working tree against REF, renames followed) gives the new side of
every hunk; a file that REF does not have (untracked, or added since) counts as changed throughout.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from typing import Dict, List, Optional, Set, Tuple

from dllint.findings import Finding


class ChangedLinesError(Exception):
    """git cannot answer (not a repository, unknown revision, no git); worded as one line."""


_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class ChangedLines:
    def __init__(self, top: str, changed: Dict[str, List[Tuple[int, int]]], known: Set[str]) -> None:
        self.top = top
        self.changed = changed  # repository path -> [first, last] line ranges of the new text
        self.known = known  # repository paths that exist in the revision (or are unchanged since)

    def covers(self, finding: Finding) -> bool:
        """Whether the finding's lines touch an added or changed line."""
        relative = self._repository_path(finding.path)
        if relative is None or relative not in self.known:
            return True  # new since the revision, or outside the repository: every line is new
        return any(first <= finding.end_line and finding.line <= last
                   for first, last in self.changed.get(relative, ()))

    def _repository_path(self, path: str) -> Optional[str]:
        relative = os.path.relpath(os.path.realpath(os.path.abspath(path)), self.top)
        return None if relative.startswith("..") else relative.replace(os.sep, "/")


def _git(arguments: List[str], cwd: str) -> bytes:
    try:
        result = subprocess.run(["git", "-c", "core.quotePath=false", *arguments], cwd=cwd, capture_output=True,
                                timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        raise ChangedLinesError(f"--diff-base needs git: {error}") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ChangedLinesError(f"--diff-base: git {arguments[0]} failed: {message[0] if message else 'no output'}")
    return result.stdout


def changed_lines_since(revision: str, start: str) -> ChangedLines:
    """The lines changed since `revision` in the repository that holds `start`."""
    if revision.startswith("-"):
        raise ChangedLinesError(f"--diff-base: not a revision: {revision}")
    cwd = start if os.path.isdir(start) else os.path.dirname(os.path.abspath(start))
    top = os.path.realpath(_git(["rev-parse", "--show-toplevel"], cwd).decode("utf-8", "surrogateescape").strip())
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top)
    except ChangedLinesError:
        raise ChangedLinesError(f"--diff-base: unknown git revision: {revision}") from None
    listing = _git(["ls-tree", "-r", "-z", "--name-only", revision], top)
    known = {name.decode("utf-8", "surrogateescape") for name in listing.split(b"\0") if name}
    diff = _git(["diff", "--unified=0", "--no-color", "--no-ext-diff", "--find-renames", revision, "--"], top)
    changed: Dict[str, List[Tuple[int, int]]] = {}
    current: Optional[str] = None
    for line in diff.split(b"\n"):
        if line.startswith(b"+++ "):
            current = _diff_path(line[4:])
            if current is not None:
                changed.setdefault(current, [])
                known.add(current)  # a renamed file: only its changed lines are new
        elif current is not None:
            hunk = _HUNK.match(line)
            if hunk:
                first, count = int(hunk.group(1)), int(hunk.group(2) or 1)
                if count:
                    changed[current].append((first, first + count - 1))
    return ChangedLines(top, changed, known)


def _diff_path(written: bytes) -> Optional[str]:
    """The path of a `+++ b/path` header (None for /dev/null); git quotes unusual names C-style."""
    # git ends the name with a tab when it holds a space (for patch's sake).
    written = written.rstrip(b"\r").rstrip(b"\t")
    if written == b"/dev/null":
        return None
    if written.startswith(b'"') and written.endswith(b'"'):
        written = codecs.escape_decode(written[1:-1])[0]
    if written.startswith(b"b/"):
        written = written[2:]
    return written.decode("utf-8", "surrogateescape")
