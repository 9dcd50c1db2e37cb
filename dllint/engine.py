"""Per-file analysis: read and parse a file, collect its facts, run the rules on a chunk of files
and place their findings. Knows nothing of the project index (dllint/index/) or the runner above it."""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import os
import re
import sys
import tokenize
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from dllint import registry
from dllint.findings import Finding

# Files that never mention these are not analysed (they cannot hold a training bug).
TORCH_MARKERS = ("torch", "lightning")
# Larger files (generated tables, vendored bundles) are skipped with a notice: even a syntax check
# takes seconds, a full analysis minutes, and nobody writes a training loop that size by hand.
MAX_ANALYSED_BYTES = 2_000_000
# A notebook's outputs (plots, tables) can make its file far larger than its code, which is what
# MAX_ANALYSED_BYTES then limits; this only bounds what is read.
MAX_NOTEBOOK_BYTES = 100_000_000
_WORD = re.compile(r"\w+")
# What may stand between the parts of one expression: spaces, line continuations, comments inside
# brackets, and closing parentheses (`(f)(x)` calls `f`).
_FILLER = r"(?:\s|\\|#[^\n]*\n|\))*"


# Names a file's text defines (`class name`, `def name`), calls (`name(`, `x.name(`), imports under
# another name (`name as alias`) and reads as attributes (`x.name`): found in one scan of the text each.
_DEFINED = re.compile(r"(?<!\w)(?:class|def)(?:\s|\\)+(\w+)")
_CALLED = re.compile(rf"(?<!\w)(\w+){_FILLER}\(")
_ALIASED = re.compile(rf"(?<!\w)(\w+){_FILLER}as{_FILLER}(\w+)")
_ATTRIBUTES = re.compile(rf"\.{_FILLER}(\w+)")


@dataclass
class SourceFile:
    path: str
    display_path: str
    source: Optional[str] = None
    facts: object = None
    error: Optional[Finding] = None
    too_large: bool = False
    notebook: object = None  # a dllint.notebook.Notebook: `source` is its joined code cells
    skipped: Optional[str] = None  # why a readable file is not linted (a notebook in another language)
    # A file of the project that the run did not name: consulted (its classes, helpers, callers) and
    # linted when its lint can report into a named file, but never reported on itself.
    context_only: bool = False

    @property
    def skip_reason(self) -> Optional[str]:
        """Why a file the run named was read but not analysed (reported as skipped, never as passed)."""
        if self.error is not None or self.context_only:
            return None
        if self.too_large:
            return f"larger than {MAX_ANALYSED_BYTES // 1_000_000} MB: not analysed"
        return f"{self.skipped}: not analysed" if self.skipped else None


@dataclass
class LintResult:
    findings: List[Finding] = field(default_factory=list)
    files_checked: int = 0
    notices: List[str] = field(default_factory=list)  # warnings for stderr, e.g. files too large to analyse
    files_analysed: int = 0  # files analysed in this run, not answered from the cache
    catalogue: Optional[object] = None  # the project's catalogue, where the run built one

    @property
    def files_with_findings(self) -> int:
        return len({f.path for f in self.findings})


def display_path(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _parse_error(path: str, line: int, column: int, message: str) -> Finding:
    info = registry.PARSE_ERROR
    return Finding(path, max(line, 1), max(column, 1), max(line, 1), max(column, 1), info.code, info.name,
                   info.severity, message)


def _decode(path: str, data: bytes) -> Tuple[Optional[str], Optional[Finding]]:
    if b"\x00" in data:
        offset = data.index(b"\x00")
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        return None, _parse_error(path, line, column, "source contains a null byte; is this a binary file?")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), None
    except (SyntaxError, LookupError) as error:
        return None, _parse_error(path, 1, 1, f"cannot decode source: {error}")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        return None, _parse_error(path, line, column, f"source is not valid {error.encoding}: {error.reason}")


class UnreadableFile(OSError):
    """A path that is not a regular file (a FIFO, a device): reading it could block or never end."""


def read_bounded(path: str, limit: int) -> bytes:
    """At most `limit` + 1 bytes of a regular file: enough to tell that it is over the limit without
    reading a runaway file whole. A FIFO or device is refused before anything is read from it."""
    import stat

    # Non-blocking, so that opening a FIFO cannot wait for a writer; fstat then decides.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(descriptor, "rb", closefd=True) as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) \
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
            raise UnreadableFile(f"not a regular file ({kind})" if kind != "not a regular file" else kind)
        chunks, size = [], 0
        while size <= limit:
            chunk = handle.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


def load_source(path: str, shown: str, data: Optional[bytes] = None) -> SourceFile:
    """Read and decode one file; a file that cannot be read or parsed becomes a DL000 finding."""
    from dllint.notebook import is_notebook

    item = SourceFile(path, shown)
    notebook = is_notebook(path)
    if data is None:
        try:
            data = read_bounded(path, MAX_NOTEBOOK_BYTES if notebook else MAX_ANALYSED_BYTES)
        except UnreadableFile as error:
            item.error = _parse_error(shown, 1, 1, f"cannot read file: {error}")
            return item
        except OSError as error:
            item.error = _parse_error(shown, 1, 1, f"cannot read file: {error.strerror or error}")
            return item
    if notebook:
        return _load_notebook(item, data)
    if len(data) > MAX_ANALYSED_BYTES:
        item.too_large = True  # never decoded: it is not analysed
        return item
    item.source, item.error = _decode(shown, data)
    return item


def _load_notebook(item: SourceFile, data: bytes) -> SourceFile:
    from dllint.notebook import NotebookError, is_python, read_notebook

    if len(data) > MAX_NOTEBOOK_BYTES:
        item.too_large = True
        return item
    try:
        raw = data.decode("utf-8-sig")  # a BOM is kept when fixes are written (rewrite.encode_like)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        item.error = _parse_error(item.display_path, line, column, f"notebook is not valid UTF-8: {error.reason}")
        return item
    try:
        notebook = read_notebook(raw)
    except NotebookError as error:
        item.error = _parse_error(item.display_path, error.line, error.column, error.message)
        return item
    if not is_python(notebook):
        item.skipped = f"a notebook in {notebook.language}, not Python"
        return item
    item.notebook, item.source = notebook, notebook.code
    item.too_large = len(notebook.code.encode("utf-8", "surrogatepass")) > MAX_ANALYSED_BYTES
    return item


def check_syntax(item: SourceFile) -> Optional[ast.Module]:
    """CPython's parser is fast and guards libcst's native parser against input that would crash it
    (thousands of nested brackets); it also gives the best error positions. Returns its tree."""
    if item.error is not None or item.source is None or item.too_large:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(item.source, filename=item.path)
    except SyntaxError as error:
        item.error = _parse_error(item.display_path, error.lineno or 1, error.offset or 1,
                                  f"syntax error: {error.msg}")
    except (RecursionError, MemoryError, ValueError, OverflowError):
        item.error = _parse_error(item.display_path, 1, 1, "file is too deeply nested to parse")
    return None


# Expressions nested deeper than this (7,000 chained `+`, 5,000 chained calls) are reported as DL000
# up front. Hand-written code stays far below it.
MAX_NESTING = 1000
# The recursion limit a lint runs under: CPython's own parser needs more than the default 1,000 for
# valid code nested a few hundred levels deep, and the analysis recurses per level too.
RECURSION_LIMIT = 10000
# An expression this short cannot be nested that deep (a level takes at least one character), so
# only longer ones are walked.
_SHORT_EXPRESSION = MAX_NESTING


def too_deep(tree: ast.AST, source: str) -> Optional[Tuple[int, int]]:
    """Where an expression nests more than MAX_NESTING levels, or None. Visits statements and only
    the expressions long enough to be that deep, so it costs little on ordinary files."""
    from dllint.lines import line_starts

    starts = line_starts(source)
    # In ASCII text columns count characters, and a statement this short holds no long expression:
    # most statements are passed over whole.
    short_statements_skipped = source.isascii()
    statements = [tree]
    while statements:
        node = statements.pop()
        for name, value in ast.iter_fields(node):
            values = value if isinstance(value, list) else [value]
            for child in values:
                if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                    if not (short_statements_skipped and _statement_length(child, starts) <= _SHORT_EXPRESSION):
                        statements.append(child)
                elif isinstance(child, ast.AST) and hasattr(child, "end_lineno") and \
                        _length(child, starts) > _SHORT_EXPRESSION and _depth_exceeds(child, MAX_NESTING):
                    return child.lineno, child.col_offset + 1
                elif isinstance(child, (ast.arguments, ast.withitem, ast.comprehension)):
                    statements.append(child)
    return None


def _statement_length(node: ast.AST, starts) -> int:
    """Characters from a statement's start (its first decorator's) to its end; a large number for a
    node without positions."""
    if getattr(node, "end_lineno", None) is None:
        return len(starts) * 1_000_000
    lines = len(starts)
    begin = min([(node.lineno, node.col_offset)] +
                [(d.lineno, d.col_offset) for d in getattr(node, "decorator_list", ())])
    end = starts[min(node.end_lineno, lines) - 1] + node.end_col_offset
    return end - (starts[min(begin[0], lines) - 1] + begin[1])


def _length(node: ast.AST, starts) -> int:
    lines = len(starts)
    begin = starts[min(node.lineno, lines) - 1] + node.col_offset
    end = starts[min(node.end_lineno, lines) - 1] + node.end_col_offset
    return end - begin


def _depth_exceeds(root: ast.AST, limit: int) -> bool:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def mentions_torch(source: str) -> bool:
    return any(marker in source for marker in TORCH_MARKERS)


# Which files are loaded in parts (model/parts.py): "consulted" (files a lint only consults, and
# linted files of at least IN_PARTS_FROM_CHARS), "always" (also linted files, then completed) or
# "never". The output is the same for all three; the tests compare them.
LOAD_IN_PARTS = "consulted"
# libcst's native parser needs about 300 bytes per character of what it parses at once: a linted file
# this large is parsed in parts too (then completed), so that its peak is its largest function's, not
# the file's (a 400 KB module: 170 MB whole, 70 MB in parts, for the same CPU time).
IN_PARTS_FROM_CHARS = 50_000


def parse_facts(item: SourceFile, module_name: str, whole: bool = True):
    """Parse with libcst and collect the file's facts (None when there is nothing to analyse).
    Unless `whole`, the file may be loaded in parts."""
    import libcst as cst

    from dllint.model.builder import build_file_facts

    syntax_tree = check_syntax(item)
    if item.error is not None or item.source is None or item.too_large or not mentions_torch(item.source):
        return None
    if syntax_tree is not None:
        deep = too_deep(syntax_tree, item.source)
        if deep is not None:
            # libcst and the analysis recurse once per level: such a file would crash them or run
            # for minutes only to fail; CPython's tree says so at once.
            item.error = _parse_error(item.display_path, deep[0], deep[1],
                                      f"file is too deeply nested to analyse (over {MAX_NESTING} levels)")
            return None
    in_parts = not whole or LOAD_IN_PARTS == "always" or len(item.source) >= IN_PARTS_FROM_CHARS
    if syntax_tree is not None and LOAD_IN_PARTS != "never" and in_parts:
        from dllint.model.parts import build_in_parts

        try:
            facts = build_in_parts(item.display_path, module_name, item.source, syntax_tree)
        except (cst.ParserSyntaxError, RecursionError):
            facts = None  # the skeleton did not parse: parse the file whole, which reports the error
        if facts is not None:
            return facts.complete() if whole else facts
    del syntax_tree
    try:
        tree = cst.parse_module(item.source)
    except cst.ParserSyntaxError as error:
        facts = _parse_view(item, module_name)
        if facts is None:
            item.error = _parse_error(item.display_path, error.raw_line, error.raw_column + 1,
                                      f"syntax error: {error.message}")
        return facts
    except (RecursionError, MemoryError):
        item.error = _parse_error(item.display_path, 1, 1, "file is too deeply nested to parse")
        return None
    return build_file_facts(item.display_path, module_name, item.source, tree)


def _parse_view(item: SourceFile, module_name: str):
    """Facts of valid Python that libcst rejects, parsed from an equivalent text (libcst_view.py);
    None when that does not parse either."""
    import libcst as cst

    from dllint.libcst_view import libcst_view
    from dllint.model.builder import build_file_facts
    from dllint.positions import parsed_from_view

    view = libcst_view(item.source or "")
    if view is None:
        return None
    try:
        tree = cst.parse_module(view.source)
    except (cst.ParserSyntaxError, RecursionError, MemoryError):
        return None
    facts = build_file_facts(item.display_path, module_name, view.source, tree)
    parsed_from_view(facts, view.shifts, view.changed_lines)
    return facts


@contextlib.contextmanager
def without_cyclic_gc():
    # Parsing allocates millions of acyclic objects; the cyclic GC would rescan them over and over
    # (FactsStore collects explicitly when it drops files). Held for a whole run, not per chunk:
    # re-enabling it between chunks costs a full scan of everything parsed so far.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Characters of parsed source one process holds: trees and facts take about 30 bytes per character.
FACTS_CAPACITY_CHARS = 32_000_000
# Characters of dropped facts between two full garbage collections (see FactsStore._shrink).
GC_AFTER_DROPPED_CHARS = 4_000_000
# libcst's native parser allocates about 300 bytes per character of the module it parses and frees
# it on return, but the C allocator keeps what was freed (a 400 KB module leaves 140 MB behind).
# After a module this large it is asked to give it back to the system; smaller parses reuse it,
# which is cheaper than taking fresh pages from the system each time.
TRIM_AFTER_CHARS = 100_000
_malloc_trim = None


def release_freed_memory() -> None:
    """Return memory the C allocator holds but no longer uses (glibc only; elsewhere nothing)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError, TypeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


class FactsStore:
    """Parsed facts of the catalogue's files, each parsed at most once while it stays in memory.

    Bounded by source size: the files used longest ago are dropped (and parsed again if a later
    query needs them), so memory stays flat however large the run is. The files the current chunk
    has used stay until it ends: its analysis compares their objects by identity, and a file
    parsed twice within one chunk would change its findings.
    """

    def __init__(self, catalogue, capacity_bytes: Optional[int] = None, own: Iterable[int] = ()) -> None:
        from collections import OrderedDict

        self.catalogue = catalogue
        # Files this process lints: parsed whole even when first consulted. Others are loaded in parts.
        self.own = set(own)
        self.capacity_bytes = FACTS_CAPACITY_CHARS if capacity_bytes is None else capacity_bytes
        self._held: "OrderedDict[int, object]" = OrderedDict()
        self._held_bytes = 0
        self._in_use: Set[int] = set()  # files the current chunk has used
        self._dropped_bytes = 0
        self._words: Dict[int, str] = {}
        self._text_names: Dict[Tuple[int, str], str] = {}
        self._import_outlines: Dict[int, object] = {}
        self.parsed = 0

    def mentions(self, index: int, word: str) -> bool:
        """Whether a file's text contains `word` as an identifier: a cheap test of whether it can refer to a name."""
        words = self._words.get(index)
        if words is None:
            # One string of the file's distinct identifiers: a fraction of the file to search, and
            # of the memory a set of them takes (tens of MB in a worker).
            distinct = set(_WORD.findall(self.catalogue.items[index].source or ""))
            words = self._words[index] = "\n" + "\n".join(distinct) + "\n"
        return f"\n{word}\n" in words

    # Cheap tests of a file's text that tell a query it need not parse the file: each is true whenever
    # the parsed facts could hold what the query looks for (they may be true when they do not).
    def may_define(self, index: int, name: str) -> bool:
        """Whether the file can define a class or function `name` (a `class name` or `def name`)."""
        return index in self._held or f"\n{name}\n" in self._names(index, "defined", _DEFINED)

    def may_call(self, index: int, name: str) -> bool:
        """Whether the file can call something named `name`: `name(...)`, `x.name(...)`, or a call
        of what it imports `name` as (`from m import name as alias`, then `alias(...)`)."""
        if index in self._held:
            return True
        called = self._names(index, "called", _CALLED)
        spellings = [name] + [line.partition(" ")[2] for line in self._names(index, "aliased", _ALIASED).split("\n")
                              if line.startswith(name + " ")]
        return any(f"\n{spelled}\n" in called for spelled in spellings)

    def may_read_attribute(self, index: int, attribute: str) -> bool:
        """Whether the file can read `.attribute` of some object."""
        return index in self._held or f"\n{attribute}\n" in self._names(index, "attributes", _ATTRIBUTES)

    def import_outline(self, index: int):
        """What a file imports and its classes' bases (model/import_outline.py); None when CPython
        cannot parse it. Read from its text once, whether or not the file is parsed."""
        if index not in self._import_outlines:
            from dllint.model.import_outline import import_outline

            self._import_outlines[index] = import_outline(self.catalogue.items[index].source or "")
        return self._import_outlines[index]

    def _names(self, index: int, kind: str, pattern: "re.Pattern[str]") -> str:
        """The distinct names `pattern` finds in a file's text, one a line (a pair as "name alias").
        A file already parsed answers from its facts (the tests above say yes), so its text is not scanned."""
        key = (index, kind)
        names = self._text_names.get(key)
        if names is None:
            found = {" ".join(m) if isinstance(m, tuple) else m
                     for m in pattern.findall(self.catalogue.items[index].source or "")}
            names = self._text_names[key] = "\n" + "\n".join(found) + "\n"
        return names

    def facts(self, index: int, whole: bool = False):
        """A file's facts; `whole` for a file being linted, else it may be loaded in parts."""
        self._in_use.add(index)
        if index in self._held:
            self._held.move_to_end(index)
            facts = self._held[index]
            if whole and facts is not None:
                facts.complete()
            return facts
        item = self.catalogue.items[index]
        try:
            facts = parse_facts(item, self.catalogue.module_names.get(index, ""), whole or index in self.own)
        except RecursionError:
            item.error = _parse_error(item.display_path, 1, 1, "file is too deeply nested to analyse")
            facts = None
        if facts is not None:
            facts.index = index
        self.parsed += 1
        if len(item.source or "") >= TRIM_AFTER_CHARS:
            release_freed_memory()
        self._held[index] = facts
        self._shrink()
        return facts

    def _shrink(self) -> None:
        # Files loaded in parts grow as they are read: measure what is held now.
        self._held_bytes = sum(_parsed_size(held, self.catalogue.items[i]) for i, held in self._held.items())
        if self._held_bytes <= self.capacity_bytes:
            return
        for index in [i for i in self._held if i not in self._in_use]:
            self._drop(index)
            if self._held_bytes <= self.capacity_bytes:
                break
        # Facts break their own cycles when dropped; anything cyclic left is collected now and then:
        # a full collection scans everything the process holds, so never more often than every
        # GC_AFTER_DROPPED_CHARS, however small the capacity.
        if self._dropped_bytes > max(self.capacity_bytes, GC_AFTER_DROPPED_CHARS):
            self._dropped_bytes = 0
            gc.collect()

    def _drop(self, index: int) -> None:
        from dllint.positions import forget

        facts = self._held.pop(index)
        size = _parsed_size(facts, self.catalogue.items[index])
        self._held_bytes -= size
        self._dropped_bytes += size
        if facts is not None:
            forget(facts)
            _break_cycles(facts)

    def held_chars(self) -> int:
        """Characters of source parsed into the facts held now."""
        return sum(_parsed_size(held, self.catalogue.items[i]) for i, held in self._held.items())

    def clear(self) -> None:
        self._in_use.clear()
        for index in list(self._held):
            self._drop(index)

    def done_with(self, indices: Iterable[int]) -> None:
        """The end of a chunk that linted `indices`. A parsed file stays only while this process still
        has to lint it (`own`), or a file it still has to lint imports it or is imported by it (a file
        consulted before its own lint would otherwise be parsed twice: 9% of the training corpus's
        parsing, for no more memory on torch's sources): lookups follow a file's
        imports, searches for callers and readers its importers, so no other lint is likely to
        consult it again (a query that does loads it again, in parts). On torch's sources that
        halves what a worker holds (11 M to 5 M characters) for 1% more parsing. Linted files that
        stay are the first to go when memory is short; a linted file that no file imports goes now:
        another lint consults it only when it looks for the callers of what it imports."""
        self._in_use.clear()
        indices = list(indices)
        remaining = self.own.difference(indices)
        for index in [i for i in self._held if i not in remaining and not self.catalogue.linked_to(i) & remaining]:
            self._drop(index)
        for index in indices:
            if index in self._held:
                if self.catalogue.importers_of(index):
                    self._held.move_to_end(index, last=False)
                else:
                    self._drop(index)
        self._shrink()



def _break_cycles(facts) -> None:
    """Empty dropped facts: they are cyclic (scopes point at their file, calls at their scope), and
    with the cyclic GC off they would stay until a full collection, a scan of everything held.
    Emptied, reference counting frees them at once."""
    for scope in facts.scopes:
        scope.__dict__.clear()
    for cls in facts.all_class_list:
        cls.__dict__.clear()
    if facts.parts is not None:
        facts.parts.__dict__.clear()
    facts.__dict__.clear()


def _parsed_size(facts, item: SourceFile) -> int:
    """Characters of source parsed into `facts`: what its trees cost in memory."""
    if facts is None:
        return 0
    return facts.parts.parsed_chars if facts.parts is not None else len(item.source or "")


# Files analysed together (see lint_chunk): large enough to share work, small enough that a
# touched file re-checks few others and that workers balance.
CHUNK_FILES = 40


def chunks(catalogue) -> List[List[int]]:
    """Consecutive linted files by path, so that a package's modules, which consult each other,
    share a chunk."""
    analysed = catalogue.linted
    return [analysed[start:start + CHUNK_FILES] for start in range(0, len(analysed), CHUNK_FILES)]


@dataclass
class FileOutcome:
    """One file's lint: its findings (some may lie in files it calls into) and what it depended on."""

    index: int
    findings: List[Finding]
    consulted: List[int]
    consulted_importers: List[int]


def lint_chunk(catalogue, store: FactsStore, indices: Sequence[int], codes: Sequence[str]) -> List[FileOutcome]:
    """Lint a few analysed files of the catalogue that share one analysis (what one file learnt
    of a model class serves the next); other files' facts come from `store` on demand.

    The chunks of a run do not depend on the number of jobs or on the cache, so neither does the
    output. A file's recorded dependencies are everything the chunk consulted up to its end: its
    results may rest on anything computed before it.
    """
    from dllint.model.flow import Analysis
    from dllint.model.project import Project

    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
    project = Project(catalogue, store)
    analysis = Analysis(project)
    outcomes = []
    for index in indices:
        findings = _lint_file(project, analysis, index, codes)
        outcomes.append(FileOutcome(index, findings, sorted(project.consulted), sorted(project.consulted_importers)))
    _release(analysis)
    _release(project)
    store.done_with(indices)
    return outcomes


def _release(holder) -> None:
    """Empty an analysis' caches. They are full of cycles, which the cyclic GC (off during a run)
    would otherwise keep until the run ends; emptied, most of it goes at once by reference count."""
    for value in vars(holder).values():
        if isinstance(value, (dict, list, set)):
            value.clear()


def _lint_file(project, analysis, index: int, codes: Sequence[str]) -> List[Finding]:
    from dllint.context import CheckContext
    from dllint.positions import place, rewritten_lines, span_of

    facts = project.load(index, whole=True)
    item = project.catalogue.items[index]
    findings: List[Finding] = [item.error] if item.error is not None else []
    reports = []
    if facts is not None:
        for rule in (r for r in (registry.get_rule(c) for c in codes) if r is not None and r.check is not None):
            context = CheckContext(facts, analysis, rule.code)
            try:
                rule.check(context)
            except Exception as error:  # a rule's bug must not stop the run
                findings.append(_internal_error(facts.path, rule.code, error))
                continue
            reports.extend(context.reports)
    by_file: Dict[int, Tuple[object, List[object]]] = {}
    for report in reports:
        by_file.setdefault(id(report.file), (report.file, []))[1].append(report.node)
    for file, nodes in by_file.values():
        place(file, nodes)  # one walk of the file for all its findings
    seen = set()
    for report in reports:
        key = (report.code, id(report.file), id(report.node))
        if key in seen:
            continue
        seen.add(key)
        info = registry.get_rule(report.code).info
        try:
            line, column, end_line, end_column = span_of(report.file, report.node)
        except Exception as error:
            findings.append(_internal_error(report.file.path, report.code, error))
            continue
        try:
            fix = _edit(report.file, report.fix) if report.fix is not None else None
        except Exception as error:  # a bug in a fix must not stop the run: the finding stands without it
            findings.append(_internal_error(report.file.path, report.code, error))
            fix = None
        if fix is not None and _touches(fix, rewritten_lines(report.file)):
            fix = None  # computed on a rewritten line (libcst_view.py), it would not fit the file
        findings.append(Finding(report.file.path, line, column, end_line, end_column, info.code, info.name,
                                info.severity, report.message, fix))
    return sorted(set(findings))


def _touches(fix, lines) -> bool:
    return bool(lines) and any(line in lines for edit in fix["edits"]
                               for line in range(edit["line"], edit["end_line"] + 1))


def unanalysed_findings(item: SourceFile) -> List[Finding]:
    return [item.error] if item.error is not None and not item.context_only else []


def notices_for(items: Sequence[SourceFile]) -> List[str]:
    return [f"{item.display_path} is larger than {MAX_ANALYSED_BYTES // 1_000_000} MB: skipped"
            if item.too_large else f"{item.display_path} is {item.skipped}: skipped"
            for item in items if (item.too_large or item.skipped) and item.error is None and not item.context_only]


def named_count(items: Sequence[SourceFile]) -> int:
    """Files the run named (the rest of the project is only consulted)."""
    return sum(1 for item in items if not item.context_only)


def reported_findings(items: Sequence[SourceFile], findings: Iterable[Finding]) -> List[Finding]:
    """The findings that lie in the files the run named, sorted: a lint of a named file's importer
    runs only for what it reports into the named file."""
    named = {item.display_path for item in items if not item.context_only}
    return sorted({finding for finding in findings if finding.path in named})


def merge_findings(catalogue, outcomes: Sequence[FileOutcome]) -> List[Finding]:
    """All findings of a run. A place reached from several files (a helper called by two training
    loops) is reported once: as its own file's lint words it, else as the first file's."""
    chosen = {}
    for outcome in outcomes:
        owner = catalogue.items[outcome.index].display_path
        for finding in outcome.findings:
            place = (finding.path, finding.line, finding.column, finding.end_line, finding.end_column, finding.code)
            held = chosen.get(place)
            if held is None or (finding.path == owner and held[0] != finding.path):
                chosen[place] = (owner, finding)
    return sorted(finding for _, finding in chosen.values())


def _edit(facts, fix):
    from dllint.fixes import edit_for

    span = _safe_span(facts, fix.old)
    if facts.parts is None:
        return edit_for(facts.tree, facts.source, fix, span)
    return _edit_in_parts(facts, fix, span)


def _edit_in_parts(facts, fix, span):
    """A fix in a file loaded in parts: from the node's own tree when its span says all, else from
    the same node of the file parsed whole (rare: fixes are mostly in the linted file)."""
    import dataclasses

    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from dllint.fixes import edit_for, local_edit
    from dllint.positions import tree_of

    if span is None:
        return None
    local = local_edit(tree_of(facts, fix.old)[0], facts.source, fix, span)
    if local is not None:
        return local
    whole = cst.parse_module(facts.source)
    for node, code_range in MetadataWrapper(whole, unsafe_skip_copy=True).resolve(PositionProvider).items():
        if type(node) is type(fix.old) and (code_range.start.line, code_range.start.column + 1, code_range.end.line,
                                            code_range.end.column + 1) == span:
            return edit_for(whole, facts.source, dataclasses.replace(fix, old=node), span)
    return None


def _safe_span(facts, node):
    from dllint.positions import span_of

    try:
        return span_of(facts, node)
    except KeyError:
        return None


def _internal_error(path: str, code: str, error: BaseException) -> Finding:
    info = registry.INTERNAL_ERROR
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    message = f"rule {code} crashed on this file ({type(error).__name__}: {error}{where}); please report it"
    return Finding(path, 1, 1, 1, 1, info.code, info.name, info.severity, message)
