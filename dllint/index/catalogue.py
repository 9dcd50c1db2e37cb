"""The run's catalogue: which files are analysed, their module names, and who imports whom.

Built once per run from the raw sources (a regex scan of import statements, no parsing), shared
with every worker. A file is linted on its own; the facts of other files are parsed on demand
when a query needs them (a model class, a helper's body, a function's callers), and only along
imports. That keeps the work per file small, parallel and cacheable per file.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from dllint.engine import SourceFile, mentions_torch
from dllint.model.modules import ModuleTable, module_name_for, root_for

_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.MULTILINE)


def imports(source: str) -> List[Tuple[str, List[str]]]:
    """(module, imported names) pairs: `from .models import Net` gives (".models", ["Net"]),
    `import models` gives ("models", [])."""
    found: List[Tuple[str, List[str]]] = []
    for match in _FROM_IMPORT.finditer(source):
        names = [n.split(" as ")[0].strip() for n in match.group(2).strip("()").replace("\\", " ").split(",")]
        found.append((match.group(1), [n for n in names if n and n != "*"]))
    for match in _PLAIN_IMPORT.finditer(source):
        found.extend((part.split(" as ")[0].strip(), []) for part in match.group(1).split(",") if part.strip())
    return found


@dataclass(frozen=True)
class ModuleEntry:
    """What the module table resolves to: an analysed file, by its index in the catalogue."""

    index: int
    path: str


@dataclass
class Catalogue:
    items: List[SourceFile]
    roots: List[str]
    analysed: List[int]
    module_names: Dict[int, str]
    modules: ModuleTable
    importers: Dict[int, List[int]]
    content_hashes: List[str] = field(default_factory=list)
    # What the run lints: the named files, and the project files that import them (directly or not),
    # whose lint can report into a named file (a training loop that feeds a named model's softmax
    # output to a loss reports in its own file, a helper it calls in the helper's file).
    linted: List[int] = field(default_factory=list)

    @property
    def path_keys(self) -> List[str]:
        """Each file's `path_key`, computed once: cache entries name the files they depend on by it."""
        if not hasattr(self, "_path_keys"):
            self._path_keys = [path_key(item.path) for item in self.items]
        return self._path_keys

    @property
    def index_of(self) -> Dict[str, int]:
        """Files by `path_key`: the same file whichever way a run spelt its path."""
        if not hasattr(self, "_index_of"):
            self._index_of = {key: n for n, key in enumerate(self.path_keys)}
        return self._index_of

    def importers_of(self, index: int) -> List[int]:
        return self.importers.get(index, [])

    def linked_to(self, index: int) -> Set[int]:
        """The files that import `index` or that it imports."""
        if not hasattr(self, "_linked"):
            linked: Dict[int, Set[int]] = {}
            for target, importers in self.importers.items():
                for importer in importers:
                    linked.setdefault(target, set()).add(importer)
                    linked.setdefault(importer, set()).add(target)
            self._linked = linked
        return self._linked.get(index, set())

    def layout_key(self) -> str:
        """Which files take part and under which module names: module resolution depends on it."""
        digest = hashlib.sha256("\0".join(self.roots).encode("utf-8", "surrogateescape"))
        for index in self.analysed:
            digest.update(f"{self.path_keys[index]}\0{self.module_names[index]}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def source_size(self, index: int) -> int:
        """Characters of a file's source, without reading a file known from the project index."""
        summary = getattr(self.items[index], "summary", None)
        return summary.size if summary is not None else len(self.items[index].source or "")

    def importers_key(self, index: int) -> str:
        """Which files import `index`: a cache entry that searched them is checked against it."""
        if not hasattr(self, "_importers_keys"):
            self._importers_keys: Dict[int, str] = {}
        key = self._importers_keys.get(index)
        if key is None:
            keys = self.path_keys
            key = self._importers_keys[index] = hashlib.sha256(
                "\0".join(keys[i] for i in self.importers_of(index)).encode("utf-8", "surrogateescape")).hexdigest()
        return key


def path_key(path: str) -> str:
    """A file's path as runs name it in keys and order: `dllint .` spells a file `pkg/m.py`, a run
    naming another file finds it as `/project/pkg/m.py`, and both must share its cache entries."""
    return os.path.abspath(path)


def is_analysed(item: SourceFile) -> bool:
    summary = getattr(item, "summary", None)  # a file known from the project index (dllint/index/)
    if summary is not None:
        return summary.analysed
    return item.error is None and item.source is not None and not item.too_large and mentions_torch(item.source)


def content_hash(item: SourceFile) -> str:
    summary = getattr(item, "summary", None)
    if summary is not None:
        return summary.content_hash
    digest = hashlib.sha256((item.source or "").encode("utf-8", "surrogatepass"))
    digest.update(repr((item.too_large, item.error)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _module_name(item: SourceFile, roots: Sequence[str]) -> str:
    name = module_name_for(item.path, root_for(item.path, roots))
    # A notebook cannot be imported: a name no import statement can spell keeps `train.ipynb` from
    # standing in for `train.py` beside it, while its package still resolves relative names.
    return f"{name}-ipynb" if item.notebook is not None else name


class CatalogueMemo:
    """What a long-lived process (the language server) keeps between the catalogues of one project:
    module names by path, and each file's resolved imports while the module table is the same.
    An edit that keeps a file analysed leaves the table as it was, so only the edited files'
    imports are resolved again."""

    def __init__(self) -> None:
        self.module_names: Dict[Tuple[str, bool], str] = {}  # (path, notebook) -> name, under `roots`
        self.roots: Tuple[str, ...] = ()
        self.layout: Optional[tuple] = None  # what `table` was built from
        self.table: Optional[ModuleTable] = None
        self.targets: Dict[int, Tuple[tuple, set]] = {}  # file index -> (its imports, the files they name)


class SavedImports:
    """Which files each file's imports name, kept in the cache folder between runs (one file per set
    of roots). Resolving every import of a large project against the module table is most of what a
    warm run naming one of its files costs (80 ms of torch's 1,000 files). An entry holds while the
    files that take part sit at the same places under the same module names (the table) and the
    importing file's content is the same (its imports)."""

    _FORMAT = 1

    def __init__(self, directory: str, roots: Sequence[str]) -> None:
        name = hashlib.sha256("\0".join(roots).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        self.path = os.path.join(directory, "imports", name + ".json")
        self.directory = directory

    def load(self, layout: str) -> Dict[int, Tuple[str, list]]:
        """File index -> (its content hash, the indices its imports name), for the same `layout`."""
        import json

        from dllint.cache_folder import build_fingerprint

        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            if data.get("format") != self._FORMAT or data.get("fingerprint") != build_fingerprint() or \
                    data.get("layout") != layout:
                return {}
            return {int(n): (digest, targets) for n, (digest, targets) in data["files"].items()}
        except (OSError, ValueError, TypeError, AttributeError, KeyError, RecursionError):
            return {}  # missing or damaged: every file's imports are resolved again

    def save(self, layout: str, files: Dict[int, Tuple[str, list]]) -> None:
        from dllint.cache_folder import build_fingerprint, prepare_folder, write_json

        try:
            prepare_folder(self.directory)
            write_json(self.path, {"format": self._FORMAT, "fingerprint": build_fingerprint(), "layout": layout,
                                   "files": {str(n): [digest, targets] for n, (digest, targets) in files.items()}})
        except OSError:
            pass  # a read-only tree resolves imports each run


def build_catalogue(items: Sequence[SourceFile], roots: Sequence[str], memo: Optional[CatalogueMemo] = None,
                    saved: Optional[SavedImports] = None, hashes: Optional[List[str]] = None) -> Catalogue:
    """`items` in the order the run reports them (sorted by path). With a `memo` of earlier calls,
    or the `saved` imports of an earlier run, what depends only on unchanged inputs is reused (the
    result is the same). `hashes` are the items' content_hash when the caller has them."""
    items = list(items)
    analysed = [n for n, item in enumerate(items) if is_analysed(item)]
    if memo is not None and memo.roots != tuple(roots):
        memo.__init__()
        memo.roots = tuple(roots)
    if memo is None:
        module_names = {n: _module_name(items[n], roots) for n in analysed}
    else:
        module_names = {}
        for n in analysed:
            key = (items[n].path, items[n].notebook is not None)
            name = memo.module_names.get(key)
            if name is None:
                name = memo.module_names[key] = _module_name(items[n], roots)
            module_names[n] = name
    # Module entries name files by index: the table holds while the same files sit at the same places.
    layout = tuple((n, module_names[n], items[n].path) for n in analysed)
    if memo is not None and memo.layout == layout:
        table = memo.table
    else:
        table = ModuleTable([(module_names[n], ModuleEntry(n, items[n].path)) for n in analysed])
        if memo is not None:
            memo.layout, memo.table, memo.targets = layout, table, {}
    hashes = list(hashes) if hashes is not None else [content_hash(item) for item in items]
    if saved is not None and memo is None:
        importers = _importers_saved(items, roots, analysed, module_names, table, hashes, saved)
    else:
        importers = {}
        for n in analysed:
            item = items[n]
            summary = getattr(item, "summary", None)
            found = summary.imports if summary is not None else imports(item.source or "")
            known = memo.targets.get(n) if memo is not None else None
            if known is not None and known[0] == found:
                targets = known[1]
            else:
                targets = _import_targets(table, n, module_names[n], item.path, found)
                if memo is not None:
                    memo.targets[n] = (found, targets)
            for target_index in targets:
                importers.setdefault(target_index, []).append(n)
    return Catalogue(items, list(roots), analysed, module_names, table, importers, hashes,
                     _linted(items, analysed, importers))


def _importers_saved(items, roots, analysed, module_names, table, hashes, saved: SavedImports) -> Dict[int, List[int]]:
    """The importers of each file, from the targets an earlier run resolved where they still hold.
    A file's targets depend on its imports (its content) and the table (the files' absolute paths
    and module names, by index): whichever way this run spelt the paths, it resolves the same."""
    digest = hashlib.sha256("\0".join(roots).encode("utf-8", "surrogateescape"))
    for n in analysed:
        digest.update(f"{n}\0{module_names[n]}\0{path_key(items[n].path)}\n".encode("utf-8", "surrogateescape"))
    layout = digest.hexdigest()
    stored = saved.load(layout)
    files: Dict[int, Tuple[str, list]] = {}
    importers: Dict[int, List[int]] = {}
    for n in analysed:
        known = stored.get(n)
        if known is not None and known[0] == hashes[n] and isinstance(known[1], list) and \
                all(type(t) is int and t != n and t in module_names for t in known[1]):
            targets = known[1]
        else:
            item = items[n]
            summary = getattr(item, "summary", None)
            found = summary.imports if summary is not None else imports(item.source or "")
            targets = sorted(_import_targets(table, n, module_names[n], item.path, found))
        files[n] = (hashes[n], targets)
        for target_index in targets:
            importers.setdefault(target_index, []).append(n)
    if files != stored:
        saved.save(layout, files)
    return importers


def _import_targets(table: ModuleTable, n: int, importer: str, path: str, found) -> set:
    """The analysed files that file `n`'s imports name (not itself)."""
    targets = set()
    for module, imported in found:
        target: Optional[ModuleEntry] = table.resolve(module, importer, path)
        if target is not None:
            targets.add(target.index)
        joiner = "" if module.endswith(".") else "."
        for name in imported:
            submodule = table.resolve(f"{module}{joiner}{name}", importer, path)
            if submodule is not None:
                targets.add(submodule.index)
    targets.discard(n)
    return targets


def _linted(items: Sequence[SourceFile], analysed: Sequence[int], importers: Dict[int, List[int]]) -> List[int]:
    chosen = {n for n in analysed if not items[n].context_only}
    frontier = list(chosen)
    while frontier:
        for importer in importers.get(frontier.pop(), []):
            if importer not in chosen:
                chosen.add(importer)
                frontier.append(importer)
    return [n for n in analysed if n in chosen]
