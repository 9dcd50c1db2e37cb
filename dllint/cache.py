"""Results cached per file (and for the whole run), keyed by dllint's version, the active rules and content.

Entries are JSON files written atomically (a temporary file, then os.replace), so concurrent
runs never see half an entry; anything unreadable or from another version is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import List, Optional, Sequence

from dllint import __version__
from dllint.cache_folder import build_fingerprint, prepare_folder, write_json
from dllint.findings import Finding
from dllint.index.catalogue import content_hash, path_key

_FORMAT = 3


def _base_digest(codes: Sequence[str]):
    digest = hashlib.sha256(f"dllint {build_fingerprint()} format {_FORMAT}\n".encode("utf-8", "surrogateescape"))
    digest.update((",".join(sorted(codes)) + "\n").encode("utf-8", "surrogateescape"))
    return digest


def run_key(items, codes: Sequence[str], hashes: Optional[Sequence[str]] = None) -> str:
    """The whole run: every file's path and content (`hashes`, each item's content_hash, when known),
    and which files it named (it reports only on those)."""
    digest = _base_digest(["run", *codes])
    for n, item in enumerate(items):
        digest.update(f"{path_key(item.path)}\0{item.display_path}\0{hashes[n] if hashes else content_hash(item)}\0{item.context_only}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def file_key(catalogue, index: int, codes: Sequence[str], layout: str) -> str:
    """One file's lint: its content, and which files take part (they decide what its imports name).
    The other files it consulted are recorded in the entry and checked when it is read."""
    item = catalogue.items[index]
    digest = _base_digest(codes)
    digest.update(f"{layout}\n{catalogue.path_keys[index]}\0{item.display_path}\0{catalogue.content_hashes[index]}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


class ResultCache:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".json")

    def get(self, key: str) -> Optional[dict]:
        try:
            with open(self._path(key), encoding="utf-8") as handle:
                entry = json.load(handle)
            if entry.get("version") != __version__ or entry.get("format") != _FORMAT or entry.get("key") != key:
                return None
            findings = [_finding(f) for f in entry["findings"]]
            notices = [str(n) for n in entry["notices"]]
            return {**entry, "findings": findings, "notices": notices}
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None  # missing, corrupt (deeply nested JSON included) or foreign: recompute

    def get_file(self, key: str, catalogue) -> Optional[List[Finding]]:
        """A file's findings, if every file its lint consulted is unchanged."""
        entry = self.get(key)
        if entry is None:
            return None
        try:
            where = catalogue.index_of
            for path, digest in entry["files"]:
                if path not in where or catalogue.content_hashes[where[path]] != digest:
                    return None
            for path, digest in entry["importers"]:
                if path not in where or catalogue.importers_key(where[path]) != digest:
                    return None
        except (TypeError, ValueError, KeyError):
            return None
        return entry["findings"]

    def put_file(self, key: str, catalogue, outcome) -> None:
        keys = catalogue.path_keys
        self.put(key, outcome.findings, [], {
            "files": [[keys[n], catalogue.content_hashes[n]] for n in outcome.consulted],
            "importers": [[keys[n], catalogue.importers_key(n)] for n in outcome.consulted_importers]})

    def put(self, key: str, findings: List[Finding], notices: List[str], extra: Optional[dict] = None) -> None:
        entry = {"version": __version__, "format": _FORMAT, "key": key,
                 "findings": [f.to_dict() for f in findings], "notices": list(notices), **(extra or {})}
        try:
            prepare_folder(self.directory)
            write_json(self._path(key), entry)
        except OSError:
            pass  # a read-only tree just runs uncached


def clear(directory: str) -> bool:
    """Delete a cache directory; True when there was one."""
    if not os.path.isdir(directory) or not os.path.exists(os.path.join(directory, ".gitignore")):
        return False
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    return True


_NUMBER_FIELDS = ("line", "column", "end_line", "end_column")
_TEXT_FIELDS = ("path", "code", "name", "severity", "message")


def _finding(fields: dict) -> Finding:
    """A cached finding, checked field by field: a damaged entry (a string where a number belongs)
    must be recomputed, not crash the sorting of every later run."""
    if not all(type(fields[name]) is int for name in _NUMBER_FIELDS) or \
            not all(isinstance(fields[name], str) for name in _TEXT_FIELDS) or \
            not (fields.get("fix") is None or isinstance(fields["fix"], dict)):
        raise TypeError("damaged cache entry")
    return Finding(**fields)
