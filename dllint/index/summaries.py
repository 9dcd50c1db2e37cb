"""Per-file summaries, kept on disk so that a run naming a few files of a large project does not
read the rest.

A run lints its named files in the company of their whole project (project_context.py). What the
run needs of each other file is small: whether it is analysed at all, what it imports (which
decides who imports the named files and is linted for them), and its content hash (cache keys).
A summary holds exactly that, as plain data. The index of a project is one JSON file in
`.dllint_cache/`, with each file's summary under its path, size and modification time; a file
whose size or time changed is read and hashed again, and summarized again if its content did.
Only a file some query consults (a model class, a helper, the callers of a function) is read
whole, when the query first needs its text.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from dllint.engine import SourceFile, load_source

_FORMAT = 1
# Modification times this close to when a file was checked may hide a later change (see context_file).
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileSummary:
    """What other files' lints need of a file that a run did not name."""

    content_hash: str
    size: int  # characters of source: how workers share out the work
    analysed: bool  # it mentions torch and reads cleanly: queries may consult it
    imports: Tuple[Tuple[str, Tuple[str, ...]], ...]  # (module, imported names), as catalogue.imports gives

    def to_json(self) -> list:
        return [self.content_hash, self.size, self.analysed, [[module, list(names)] for module, names in self.imports]]

    @staticmethod
    def from_json(data) -> "FileSummary":
        content_hash, size, analysed, imports = data
        if not isinstance(content_hash, str) or type(size) is not int or not isinstance(analysed, bool):
            raise TypeError("damaged summary")
        return FileSummary(content_hash, size, analysed,
                           tuple((str(module), tuple(str(n) for n in names)) for module, names in imports))


def summarize(item: SourceFile) -> Optional[FileSummary]:
    """The summary of a loaded file; None for one that is not plain readable Python (unreadable,
    too large, a notebook): such files are loaded as they are each time, which reports why."""
    from dllint.index.catalogue import content_hash, imports, is_analysed

    if item.error is not None or item.source is None or item.too_large or item.notebook is not None or item.skipped:
        return None
    found = tuple((module, tuple(names)) for module, names in imports(item.source)) if is_analysed(item) else ()
    return FileSummary(content_hash(item), len(item.source), is_analysed(item), found)


class IndexedFile(SourceFile):
    """A project file the run did not name, known by its summary. Its text is read when a query
    first consults the file; until then it costs a `stat`."""

    def __init__(self, path: str, shown: str, summary: FileSummary) -> None:
        super().__init__(path, shown, context_only=True)
        self.summary = summary

    @property
    def source(self) -> Optional[str]:
        if not self._read:
            self._read = True
            loaded = load_source(self.path, self.display_path)
            # A file that became unreadable since it was indexed stays unanalysable, as it was read now.
            self._text, self.error, self.too_large = loaded.source, loaded.error, loaded.too_large
        return self._text

    @source.setter
    def source(self, value: Optional[str]) -> None:
        self._text, self._read = value, value is not None


def summary_of(item: SourceFile) -> Optional[FileSummary]:
    return getattr(item, "summary", None)


class ProjectIndex:
    """The summaries of one project's files, loaded from and saved to one file of the cache (or,
    without a cache, kept for the life of the process: a language server's workspace)."""

    _in_memory: Dict[str, "ProjectIndex"] = {}

    @classmethod
    def for_project(cls, cache_directory: Optional[str], root: str) -> "ProjectIndex":
        if cache_directory is not None:
            return cls(cache_directory, root)
        key = os.path.abspath(root)
        if key not in cls._in_memory:
            cls._in_memory[key] = cls(None, root)
        return cls._in_memory[key]

    def __init__(self, cache_directory: Optional[str], root: str) -> None:
        from dllint.cache_folder import build_fingerprint

        self.fingerprint = build_fingerprint()
        self.path = None
        if cache_directory is not None:
            name = hashlib.sha256(os.path.abspath(root).encode("utf-8", "surrogateescape")).hexdigest()[:24]
            self.path = os.path.join(cache_directory, "index", name + ".json")
        self.entries: Dict[str, list] = {}  # absolute path -> [size, mtime_ns, summary as JSON]
        self._parsed: Dict[str, Tuple[list, Tuple[int, int, int, FileSummary]]] = {}  # entry -> it, read
        self.changed = False
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("format") == _FORMAT and data.get("fingerprint") == self.fingerprint and \
                    isinstance(data.get("files"), dict):
                self.entries = data["files"]
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            self.entries = {}  # missing or damaged: rebuilt as files are summarized

    def context_file(self, path: str, shown: str) -> SourceFile:
        """The project file at `path` as a run that did not name it sees it: from its summary when
        the file is unchanged since it was summarized, else read (and summarized) now."""
        from dllint.index.catalogue import content_hash

        key = os.path.abspath(path)
        try:
            status = os.stat(path)
        except (OSError, ValueError):
            status = None
        stored = self._stored(key)
        if status is not None and stored is not None:
            size, mtime, checked, summary = stored
            # A file changed again within the clock tick of its last check keeps its size and time:
            # one checked that soon after it was written is trusted only once its content is.
            if size == status.st_size and mtime == status.st_mtime_ns and checked - mtime > _RACY_NS:
                return IndexedFile(path, shown, summary)
        item = load_source(path, shown)
        item.context_only = True
        summary = stored[3] if stored is not None and stored[3].content_hash == content_hash(item) and \
            item.error is None else summarize(item)
        if status is not None and summary is not None:
            item.summary = summary
            self.entries[key] = [status.st_size, status.st_mtime_ns, time.time_ns(), summary.to_json()]
            self.changed = True
        elif key in self.entries:
            del self.entries[key]
            self.changed = True
        return item

    def record(self, item: SourceFile, read_since: int) -> None:
        """Keep the summary of a file the run named and read from disk no earlier than `read_since`
        (time.time_ns()), so that a later run that does not name it need not read it."""
        try:
            status = os.stat(item.path)
        except (OSError, ValueError):
            return
        key = os.path.abspath(item.path)
        entry = self.entries.get(key)
        if type(entry) is list and len(entry) == 4 and all(type(n) is int for n in entry[:3]) and \
                (entry[0], entry[1]) == (status.st_size, status.st_mtime_ns) and entry[2] - entry[1] > _RACY_NS:
            # Summarized before, unchanged since: a warm run does not scan every file's imports again,
            # nor read its summary (a damaged one is summarized again by the first run that needs it).
            return
        stored = self._stored(key)
        summary = summarize(item)
        if summary is not None and (stored is None or stored[:2] != (status.st_size, status.st_mtime_ns) or
                                    stored[3] != summary or read_since - status.st_mtime_ns > _RACY_NS):
            # Checked as of when it was read: a change since then is a change within the racy window.
            self.entries[key] = [status.st_size, status.st_mtime_ns, read_since, summary.to_json()]
            self.changed = True

    def _stored(self, key: str) -> Optional[Tuple[int, int, int, FileSummary]]:
        entry = self.entries.get(key)
        if entry is None:
            return None
        parsed = self._parsed.get(key)
        if parsed is not None and parsed[0] is entry:
            return parsed[1]  # an index kept in memory reads each entry once
        try:
            size, mtime, checked, data = entry
            if not all(type(n) is int for n in (size, mtime, checked)):
                return None
            stored = size, mtime, checked, FileSummary.from_json(data)
        except (TypeError, ValueError):
            return None  # a damaged entry: the file is summarized again
        self._parsed[key] = (entry, stored)
        return stored

    def forget_missing(self, present: List[str]) -> None:
        """Drop the entries of files no longer in the project."""
        keep = {os.path.abspath(p) for p in present}
        for key in [k for k in self.entries if k not in keep]:
            del self.entries[key]
            self._parsed.pop(key, None)
            self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        from dllint.cache_folder import prepare_folder, write_json

        try:
            prepare_folder(os.path.dirname(os.path.dirname(self.path)))
            write_json(self.path, {"format": _FORMAT, "fingerprint": self.fingerprint, "files": self.entries})
            self.changed = False
        except OSError:
            pass  # a read-only tree runs without a saved index
