"""Which files to lint: explicit files always, directories recursively, minus excluded and git-ignored names."""

from __future__ import annotations

import fnmatch
import os
import stat
import subprocess
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from dllint.config import DEFAULT_EXCLUDES

# Kept for callers that predate configurable excludes.
SKIPPED_DIRECTORIES = set(DEFAULT_EXCLUDES)
# What a directory walk lints: Python files and Jupyter notebooks.
LINTED_SUFFIXES = (".py", ".ipynb")


class PathError(Exception):
    """A path given on the command line that cannot be linted."""


def _relative_posix(path: str, base: Optional[str]) -> str:
    absolute = os.path.abspath(path)
    if base:
        relative = os.path.relpath(absolute, base)
        if not relative.startswith(".."):
            return relative.replace(os.sep, "/")
    return os.path.normpath(path).replace(os.sep, "/")


def path_matches(pattern: str, path: str, base: Optional[str] = None) -> bool:
    """Does a glob from the command line or the config match `path`?

    A pattern without a slash (`generated`, `*_pb2.py`) matches any component of the path. A pattern
    with one (`tests/*.py`, `src/legacy`) matches the path relative to `base` (the directory of the
    config file), or any trailing part of it, or a directory above the file. `*` crosses slashes.
    """
    pattern = pattern.replace(os.sep, "/").strip()
    if not pattern:
        return False
    if os.path.isabs(pattern):
        absolute = os.path.abspath(path).replace(os.sep, "/")
        trimmed = pattern.rstrip("/")
        return fnmatch.fnmatch(absolute, trimmed) or fnmatch.fnmatch(absolute, trimmed + "/*")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if pattern.startswith("**/"):
        pattern = pattern[3:]
    pattern = pattern.rstrip("/")
    relative = _relative_posix(path, base)
    if "/" not in pattern:
        return any(fnmatch.fnmatch(part, pattern) for part in relative.split("/") if part not in ("", ".", ".."))
    return any(fnmatch.fnmatch(relative, candidate)
               for candidate in (pattern, f"*/{pattern}", f"{pattern}/*", f"*/{pattern}/*"))


def is_excluded(path: str, patterns: Sequence[str], base: Optional[str] = None) -> bool:
    # Plain names (`.git`, `venv`) are by far the most common: a set lookup instead of globbing.
    plain = {p.strip() for p in patterns if not any(c in p for c in "*?[/\\") and p.strip()}
    if plain and plain & set(_relative_posix(path, base).split("/")):
        return True
    return any(path_matches(p, path, base) for p in patterns if p.strip() not in plain)


class _Exclusion:
    """`is_excluded(relative, patterns)` for the entries of a directory walk, whose parent folders
    were all matched already and not excluded: a pattern that matches single components then needs
    only the entry's own name (a set lookup for plain names), and only the rare patterns with a
    slash, or absolute ones, are matched against the whole relative path."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.plain = {p.strip() for p in patterns if not any(c in p for c in "*?[/\\") and p.strip()}
        self.name_globs: List[str] = []
        self.path_patterns: List[str] = []
        for pattern in patterns:
            if pattern.strip() in self.plain:
                continue
            normal = pattern.replace(os.sep, "/").strip()
            if not normal:
                continue
            if not os.path.isabs(normal):
                while normal.startswith("./"):
                    normal = normal[2:]
                if normal.startswith("**/"):
                    normal = normal[3:]
                if "/" not in normal.rstrip("/"):
                    self.name_globs.append(normal.rstrip("/"))
                    continue
            self.path_patterns.append(pattern)

    def excluded(self, relative: str, name: str) -> bool:
        if name in self.plain or any(fnmatch.fnmatch(name, glob) for glob in self.name_globs):
            return True
        return any(path_matches(p, relative) for p in self.path_patterns)


@dataclass
class Discovery:
    files: List[str] = field(default_factory=list)
    roots: List[str] = field(default_factory=list)  # directories the files were found under
    git_ignored: int = 0  # files skipped because git ignores them
    warnings: List[str] = field(default_factory=list)  # directories that could not be read
    # Every directory the walks read (absolute): a file appears or disappears in one of them only by
    # changing its modification time, which is how a long-lived process knows when to walk again.
    directories: List[str] = field(default_factory=list)
    real_paths: Dict[str, str] = field(default_factory=dict)  # each file's os.path.realpath


def discover_files(paths: Iterable[str], exclude: Sequence[str] = DEFAULT_EXCLUDES, base: Optional[str] = None,
                   respect_gitignore: bool = False, force_exclude: bool = False) -> Discovery:
    """Files named in `paths` are always linted (unless `force_exclude`, when `exclude` applies to
    them too); files found by walking a directory are skipped when they match `exclude` or, with
    `respect_gitignore`, when git ignores them. Raises PathError for a missing path."""
    found = Discovery()
    walked: List[str] = []
    named_directories: List[str] = []
    seen: Set[str] = set()

    # Patterns with a slash are written relative to the config file (`src/legacy/*`), so they are also
    # matched from there.
    anchored = [p for p in exclude if "/" in p.replace(os.sep, "/").strip("/")]
    below_named = _Exclusion(exclude)

    def excluded(path: str, relative: str, name: str) -> bool:
        # Below the named directory only: naming an excluded directory (or one inside `build/`) still
        # lints it.
        return below_named.excluded(relative, name) or \
            (base is not None and bool(anchored) and is_excluded(path, anchored, base))

    def add(path: str, key: str, from_walk: bool) -> None:
        if key not in seen:
            seen.add(key)
            found.files.append(os.path.normpath(path))
            found.real_paths[found.files[-1]] = key
            if from_walk:
                walked.append(found.files[-1])

    def unreadable(error: OSError) -> None:
        found.warnings.append(f"{error.filename}: cannot read directory ({error.strerror or error}); "
                              f"its files were not checked")

    for given in paths:
        try:
            is_directory = stat.S_ISDIR(os.stat(given).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            raise PathError(f"{given}: no such file or directory") from None
        except OSError:
            # It may exist in a directory we cannot search: reading it reports why it cannot be linted.
            is_directory = False
        except ValueError:  # a null byte in the name
            raise PathError(f"{given}: not a valid path") from None
        if force_exclude and is_excluded(given, exclude, base):
            continue
        if not is_directory:
            # Files, and anything else named explicitly (a FIFO, a device), which reading reports.
            found.roots.append(os.path.dirname(os.path.abspath(given)))
            add(given, os.path.realpath(given), from_walk=False)
            continue
        found.roots.append(os.path.abspath(given))
        named_directories.append(given)
        _walk(given, excluded, add, unreadable, found.directories)
    if respect_gitignore and walked:
        ignored = git_ignored([*named_directories, *walked])
        # A directory that git ignores but the user named explicitly is linted all the same.
        honoured = {f for f in walked if os.path.abspath(f) in ignored and
                    not any(os.path.abspath(d) in ignored and is_under(f, d) for d in named_directories)}
        found.files = [f for f in found.files if f not in honoured]
        found.git_ignored = len(honoured)
    return found


def _walk(given: str, excluded, add, unreadable, directories: List[str]) -> None:
    """What `os.walk(given)` visits (links to folders are not followed), sorted, minus excluded
    entries: each linted file is `add`ed with its real path. Without a `stat` per file: the
    folder's listing says what each entry is, and only links need resolving (a file below a folder
    that is no link has the real path of that folder joined with its own)."""
    real_given = os.path.realpath(given)
    # (path as os.walk spells it, path relative to `given`, its real path)
    pending = [(given, "", real_given)]
    while pending:
        directory, relative, real = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as error:
            unreadable(error)
            continue
        directories.append(os.path.abspath(directory))
        subdirectories, files = [], []
        for entry in entries:
            try:
                is_directory = entry.is_dir()
            except OSError:
                is_directory = False
            (subdirectories if is_directory else files).append(entry)
        below = []
        for entry in sorted(subdirectories, key=lambda e: e.name):
            path, inner = os.path.join(directory, entry.name), f"{relative}{entry.name}"
            if excluded(path, inner, entry.name):
                continue
            try:
                is_link = entry.is_symlink()
            except OSError:
                is_link = False
            if not is_link:  # os.walk does not follow links to folders
                below.append((path, inner + "/", os.path.join(real, entry.name)))
        for entry in sorted(files, key=lambda e: e.name):
            name = entry.name
            if not name.endswith(LINTED_SUFFIXES):
                continue
            try:
                # Only regular files (and links to them): a FIFO named `x.py` would block the read.
                if not entry.is_file():
                    continue
                is_link = entry.is_symlink()
            except OSError:
                continue
            path = os.path.join(directory, name)
            if not excluded(path, f"{relative}{name}", name):
                add(path, os.path.realpath(path) if is_link else os.path.join(real, name), True)
        pending.extend(reversed(below))


def is_under(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or lies below it."""
    absolute, folder = os.path.abspath(path), os.path.abspath(directory)
    return absolute == folder or absolute.startswith(folder.rstrip(os.sep) + os.sep)


def discover(paths: Iterable[str], exclude: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """Return (files to lint, roots they were found under), skipping the default excludes and `exclude`."""
    found = discover_files(paths, (*DEFAULT_EXCLUDES, *exclude))
    return found.files, found.roots


def git_ignored(paths: Sequence[str]) -> Set[str]:
    """Absolute paths among `paths` that git ignores, asked in one `git check-ignore` call. Outside a
    repository, or without git, nothing is ignored."""
    if not paths:
        return set()
    absolute = [os.path.abspath(p) for p in paths]
    try:
        base = os.path.commonpath([p if os.path.isdir(p) else os.path.dirname(p) for p in absolute])
    except ValueError:
        return set()
    relative = [os.path.relpath(p, base) for p in absolute]
    try:
        result = subprocess.run(["git", "check-ignore", "--stdin", "-z"], cwd=base,
                                input="\0".join(relative).encode("utf-8", "surrogateescape"),
                                capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return set()
    # 0: some paths are ignored, 1: none are; anything else (not a repository, a path inside a
    # submodule) means git cannot tell, and then nothing is skipped.
    if result.returncode not in (0, 1):
        return set()
    names = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return {os.path.normpath(os.path.join(base, name)) for name in names if name}


def repository_root(start: str) -> Optional[str]:
    """The git top-level directory containing `start`, or None outside a repository (or without git)."""
    try:
        result = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=os.path.abspath(start),
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    top = result.stdout.strip()
    return os.path.abspath(top) if result.returncode == 0 and top else None
