"""Which files to lint: explicit files always, directories recursively, minus excluded names."""

from __future__ import annotations

import fnmatch
import os
from typing import Iterable, List, Sequence, Tuple

SKIPPED_DIRECTORIES = {".git", ".hg", ".svn", ".venv", "venv", "env", "build", "dist", "__pycache__",
                       "node_modules", ".tox", ".eggs", ".nox", ".mypy_cache", ".pytest_cache",
                       ".dllint_cache"}


class PathError(Exception):
    """A path given on the command line that cannot be linted."""


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    name = os.path.basename(path)
    normalized = path.replace(os.sep, "/")
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(normalized, p) or
               fnmatch.fnmatch(normalized, f"*/{p}") for p in patterns)


def discover(paths: Iterable[str], exclude: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """Return (files to lint, roots they were found under). Raises PathError for a missing path."""
    files: List[str] = []
    roots: List[str] = []
    seen = set()
    for given in paths:
        if not os.path.exists(given):
            raise PathError(f"{given}: no such file or directory")
        if os.path.isfile(given):
            found = [given]
            roots.append(os.path.dirname(os.path.abspath(given)))
        else:
            found = []
            roots.append(os.path.abspath(given))
            for directory, subdirs, names in os.walk(given):
                subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRECTORIES
                                    and not _excluded(os.path.join(directory, d), exclude))
                for name in sorted(names):
                    full = os.path.join(directory, name)
                    if name.endswith(".py") and not _excluded(full, exclude):
                        found.append(full)
        for path in found:
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(os.path.normpath(path))
    return files, roots
