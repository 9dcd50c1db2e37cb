"""What a long-lived process (the language server) keeps of its projects between lints, so that an
edit of one buffer does not walk the project and resolve every file's imports again.

Each lint still sees exactly what a fresh run would: a project walk is reused only while nothing it
depends on has changed (the modification times of the folders it read, and with
`respect-gitignore` those of the ignore files git reads), and a catalogue reuses only what depends
on unchanged inputs (catalogue.CatalogueMemo). Settings are part of every key; the server drops
everything when a configuration file changes.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from dllint.discovery import Discovery, discover_files
from dllint.index.catalogue import CatalogueMemo

# A folder modified this close to the walk that read it may have changed again within the same
# clock tick, which its modification time would not show: such a walk is not reused.
_RACY_NS = 2_000_000_000


def _stamp(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


@dataclass
class _Walk:
    found: Discovery
    stamps: Dict[str, Optional[Tuple[int, int, int]]]  # what the walk depended on, as it was then

    def still_valid(self) -> bool:
        return all(_stamp(path) == stamp for path, stamp in self.stamps.items())


class LiveProjects:
    """Project walks and catalogue memos by project root (and settings), for a process's life."""

    def __init__(self) -> None:
        self._walks: Dict[tuple, _Walk] = {}
        self._catalogues: Dict[Tuple[str, ...], CatalogueMemo] = {}

    def clear(self) -> None:
        self._walks.clear()
        self._catalogues.clear()

    def catalogue_memo(self, roots: Sequence[str]) -> CatalogueMemo:
        return self._catalogues.setdefault(tuple(roots), CatalogueMemo())

    def known_files(self) -> List[str]:
        """Every file of the walks kept now (absolute paths). Called from the server's message loop
        while its lint thread may replace a walk: the walks are copied in one step first."""
        return [os.path.abspath(path) for walk in tuple(self._walks.values()) for path in walk.found.files]

    def discover(self, root: str, exclude: Sequence[str], base: Optional[str], respect_gitignore: bool) -> Discovery:
        """discover_files([root], ...) as it would answer now: the last walk while nothing it read
        has changed since, else a new one."""
        key = (os.path.abspath(root), tuple(exclude), base, respect_gitignore)
        kept = self._walks.get(key)
        if kept is not None and kept.still_valid():
            return kept.found
        started = time.time_ns()
        found = discover_files([root], exclude, base, respect_gitignore)
        self._walks.pop(key, None)
        if found.warnings:
            return found  # an unreadable folder may become readable without its parent changing
        watched = list(found.directories)
        if respect_gitignore:
            watched.extend(_ignore_files(root, found.directories))
        stamps = {path: _stamp(path) for path in watched}
        if all(stamp is None or stamp[1] < started - _RACY_NS for stamp in stamps.values()):
            self._walks[key] = _Walk(found, stamps)
        return found


def _ignore_files(root: str, directories: Sequence[str]) -> List[str]:
    """Every file whose change can change what git ignores below `root`: the .gitignore of each
    folder walked and of the folders above it, the repository's info/exclude and configuration, and
    the user's and the system's git configuration and global ignore file (core.excludesFile is
    set in one of those; where it points elsewhere, that file is named too)."""
    found = [os.path.join(d, ".gitignore") for d in directories]
    folder = os.path.abspath(root)
    while True:
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
        found.append(os.path.join(folder, ".gitignore"))
    home = os.path.expanduser("~")
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    found += [os.path.join(home, ".gitconfig"), os.path.join(config_home, "git", "config"),
              os.path.join(config_home, "git", "ignore"), "/etc/gitconfig"]
    try:
        result = subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
                                cwd=os.path.abspath(root), capture_output=True, text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            common = result.stdout.strip()
            found += [os.path.join(common, "info", "exclude"), os.path.join(common, "config")]
        result = subprocess.run(["git", "config", "--path", "core.excludesFile"], cwd=os.path.abspath(root),
                                capture_output=True, text=True, timeout=30)
        if result.returncode == 0 and result.stdout.strip():
            found.append(os.path.abspath(os.path.expanduser(result.stdout.strip())))
    except (OSError, subprocess.SubprocessError):
        pass
    return found
