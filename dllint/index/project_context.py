"""The project a linted file belongs to: its root, its files, and each file's import root.

A file's findings must not depend on which other files a run happened to name: an editor names one
buffer, pre-commit the changed files, CI the whole tree. So every entry point lints the named files
in the company of their whole project. The other files are read (cheap) but parsed only when a query
follows an import to them, linted only when they import a named file (their lint can report into
it), and never reported on.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple

from dllint.discovery import is_under
from dllint.engine import SourceFile, display_path, load_source

# A project root this large is most likely a home or system folder that happens to hold a script:
# reading all of it would cost more than the cross-file facts are worth.
MAX_PROJECT_FILES = 5000


def is_package(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "__init__.py"))


def import_root(path: str) -> str:
    """The folder Python would put on sys.path to import `path`: the nearest folder above it that
    is not a package. Module names are relative to it whichever paths a run names."""
    directory = os.path.dirname(os.path.abspath(path))
    while is_package(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory


# Files that mark the top of a project when no configuration file names it.
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(paths: Sequence[str], config_path: Optional[str] = None) -> str:
    """The configuration file's folder; else the nearest folder at or above the linted paths that
    holds a project marker (pyproject.toml, setup.py, setup.cfg, .git); else the nearest folder at
    or above them that is not a package. Module names are relative to it, as in a run over it."""
    from dllint.config import search_start

    if config_path is not None:
        return os.path.dirname(os.path.abspath(config_path))
    start = search_start(paths)
    while not os.path.isdir(start) and os.path.dirname(start) != start:
        start = os.path.dirname(start)  # a buffer's folder need not exist yet
    directory = start
    while True:
        if any(os.path.exists(os.path.join(directory, marker)) for marker in PROJECT_MARKERS):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    while is_package(start):
        parent = os.path.dirname(start)
        if parent == start:
            break
        start = parent
    return start


def with_project(items: List[SourceFile], paths: Sequence[str], config_path: Optional[str] = None,
                 exclude: Sequence[str] = (), base: Optional[str] = None,
                 respect_gitignore: bool = False,
                 buffers: Optional[Mapping[str, str]] = None,
                 cache_directory: Optional[str] = None,
                 read_since: Optional[int] = None, live=None,
                 walked=None) -> Tuple[List[SourceFile], List[str]]:
    """The named `items` plus the other files of their project (marked `context_only`), and the
    roots that name every file's module. An item read from a buffer stands for its file on disk, and
    so does each of `buffers` (absolute path -> unsaved text, e.g. an editor's other open documents).
    The other files come from the project index (dllint/index/), kept in `cache_directory` if given,
    else in memory for the life of the process (a language server's workspace):
    a file unchanged since it was summarized is not read until a query consults it; the named
    files, read from disk no earlier than `read_since` (time.time_ns()), are summarized into it.
    A long-lived process passes its `live` projects (index/live.py): the project's walk is reused
    while nothing it read has changed. `walked` is the caller's discover_files(paths) with the same
    excludes: when `paths` is the project root, the project is not walked again."""
    from dllint.discovery import DEFAULT_EXCLUDES, discover_files
    from dllint.index.summaries import ProjectIndex

    named = [p for p in paths if p != "-"]
    context: List[SourceFile] = []
    roots = set()
    if named:
        root = project_root(named, config_path)
        roots.add(root)
        if walked is not None and exclude and len(named) == 1 and os.path.isdir(named[0]) and \
                os.path.abspath(named[0]) == root and walked.roots == [root]:
            found = walked  # `dllint .` at the project root: the same walk
        elif live is not None:
            found = live.discover(root, exclude or DEFAULT_EXCLUDES, base, respect_gitignore)
        else:
            found = discover_files([root], exclude or DEFAULT_EXCLUDES, base, respect_gitignore)
        if len(found.files) <= MAX_PROJECT_FILES:
            index = ProjectIndex.for_project(cache_directory, root)
            # The walk already resolved its own symlinks; the named files may be spelt differently.
            real_path = _real_paths()
            named_real = walked.real_paths if walked is not None else {}
            have = {os.path.abspath(item.path) for item in items}
            have.update([named_real.get(item.path) or real_path(os.path.abspath(item.path)) for item in items])
            shown = display_paths()
            for path in found.files:
                absolute = os.path.abspath(path)
                if absolute in have or (found.real_paths.get(path) or real_path(absolute)) in have:
                    continue
                text = buffers.get(absolute) if buffers else None
                if text is not None:
                    item = load_source(path, shown(path), text.encode("utf-8"))
                    item.context_only = True
                else:
                    item = index.context_file(path, shown(path))
                context.append(item)
            if read_since is not None:
                for item in items:
                    if item.path != "-" and os.path.abspath(item.path) not in (buffers or {}):
                        index.record(item, read_since)
            index.forget_missing(found.files)
            index.save()
    everything = [*items, *context]
    if named:
        roots.update(_nested_projects(root, everything))
    # A named file outside the project root (a second project on the same command line) is named
    # from its own import root.
    roots.update(import_root(item.path) for item in items
                 if item.path != "-" and not any(is_under(item.path, r) for r in roots))
    return everything, sorted(roots)


def linked_files(path: str, config_path: Optional[str] = None, exclude: Sequence[str] = (),
                 base: Optional[str] = None, respect_gitignore: bool = False,
                 buffers: Optional[Mapping[str, str]] = None, live=None) -> Optional[Set[str]]:
    """Absolute paths of the project files linked to `path` through imports, in either direction,
    directly or not: only their findings can change when `path` changes (a file's lint consults
    what it imports and is reported into by its importers). None when the file is not analysed
    (it may just have stopped or started being so): then any file may have changed."""
    return files_linked_to_any([path], config_path, exclude, base, respect_gitignore, buffers, live).get(path)


def files_linked_to_any(paths: Sequence[str], config_path: Optional[str] = None, exclude: Sequence[str] = (),
                        base: Optional[str] = None, respect_gitignore: bool = False,
                        buffers: Optional[Mapping[str, str]] = None, live=None) -> Dict[str, Optional[Set[str]]]:
    """linked_files of each of `paths` (files of one project), from one catalogue of the project."""
    from dllint.index.catalogue import build_catalogue, path_key

    items = []
    for path in paths:
        text = buffers.get(os.path.abspath(path)) if buffers else None
        items.append(load_source(path, display_path(path), None if text is None else text.encode("utf-8")))
    items, roots = with_project(items, list(paths), config_path, exclude, base, respect_gitignore, buffers,
                                live=live)
    memo = live.catalogue_memo(roots) if live is not None else None
    catalogue = build_catalogue(sorted(items, key=lambda i: path_key(i.path)), roots, memo)
    return {path: files_linked_to(path, catalogue) for path in paths}


def files_linked_to(path: str, catalogue) -> Optional[Set[str]]:
    """linked_files within a project already catalogued (a lint's LintResult.catalogue)."""
    from dllint.index.catalogue import path_key

    start = catalogue.index_of.get(path_key(path))
    if start is None or start not in catalogue.module_names:
        return None
    seen, frontier = {start}, [start]
    while frontier:
        fresh = catalogue.linked_to(frontier.pop()) - seen
        seen |= fresh
        frontier.extend(fresh)
    return {path_key(catalogue.items[n].path) for n in seen}


def _real_paths():
    """os.path.realpath for many files of few folders: each folder resolved once."""
    folders: dict = {}

    def real_path(absolute: str) -> str:
        if os.path.islink(absolute):
            return os.path.realpath(absolute)
        folder, name = os.path.split(absolute)
        if folder not in folders:
            folders[folder] = os.path.realpath(folder)
        return os.path.join(folders[folder], name)
    return real_path


def display_paths():
    """engine.display_path for many files, without os.path.relpath's work for a normalized path:
    an absolute one below the working directory is shown relative to it, anything else normalized as it is."""
    try:
        prefix = os.getcwd().rstrip(os.sep) + os.sep
    except OSError:
        return display_path

    def shown(path: str) -> str:
        if not os.path.isabs(path) and path == os.path.normpath(path) and path.split(os.sep, 1)[0] != "..":
            return path  # a normalized path below the working directory is shown as it is
        if not os.path.isabs(path) or path != os.path.normpath(path) or path + os.sep == prefix:
            return display_path(path)
        relative = path[len(prefix):] if path.startswith(prefix) else ".."
        return path if relative.startswith("..") else relative
    return shown


def _nested_projects(root: str, items: Sequence[SourceFile]) -> List[str]:
    """Folders below `root` with a project file of their own (an example or a vendored project):
    their files are named from there, in every run, whichever folder the run starts from."""
    marked: dict = {}

    def is_marked(directory: str) -> bool:
        if directory not in marked:
            marked[directory] = any(os.path.isfile(os.path.join(directory, marker))
                                    for marker in PROJECT_MARKERS if marker != ".git")
        return marked[directory]

    project_of: dict = {}  # folder -> the nearest marked folder at or above it, below `root`

    def nearest(directory: str) -> Optional[str]:
        if directory not in project_of:
            if not is_under(directory, root):
                project_of[directory] = None
            elif is_marked(directory):
                project_of[directory] = directory
            else:
                parent = os.path.dirname(directory)
                project_of[directory] = nearest(parent) if parent != directory else None
        return project_of[directory]

    found = {nearest(os.path.dirname(os.path.abspath(item.path))) for item in items}
    return sorted(d for d in found if d is not None)
