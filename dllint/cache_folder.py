"""The `.dllint_cache/` folder, shared by the project index (dllint/index/) and the result cache
(dllint/cache.py): its name, its .gitignore, the fingerprint of the code that writes entries, and
atomic writes (a temporary file, then os.replace), so concurrent runs never see half an entry."""

from __future__ import annotations

import hashlib
import json
import os
from typing import List

from dllint import __version__

CACHE_DIRECTORY = ".dllint_cache"


_BUILD: List[str] = []


def build_fingerprint() -> str:
    """dllint's version plus the size and time of its own sources, so that an edited
    development install never reads results computed by older code."""
    if not _BUILD:
        package = os.path.dirname(os.path.abspath(__file__))
        digest = hashlib.sha256(__version__.encode("utf-8", "surrogateescape"))
        for directory, subdirs, names in os.walk(package):
            subdirs.sort()
            for name in sorted(names):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(directory, name))
                    digest.update(f"{directory}/{name}:{stat.st_size}:{stat.st_mtime_ns}".encode("utf-8", "surrogateescape"))
        _BUILD.append(digest.hexdigest())
    return _BUILD[0]


def prepare_folder(directory: str) -> None:
    """Create the cache folder with a .gitignore that keeps it out of version control."""
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    ignore = os.path.join(directory, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as handle:
            handle.write("# Created by dllint: cached results, safe to delete.\n*\n")


def write_json(target: str, data) -> None:
    """Write `data` to `target` atomically. Raises OSError (a read-only tree)."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(data))  # json.dump would encode in Python, not with the C encoder: 10x slower
    os.replace(temporary, target)
