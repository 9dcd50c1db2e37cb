"""dllint as a language server: lints open buffers on open, change (debounced) and save, each in the
company of its project and of the other open buffers; offers quick fixes, ignore comments and
`source.fixAll.dllint`; reloads settings when a pyproject.toml changes.

Lints run on one worker thread, off the message loop, so the server keeps answering while a large
file is linted; a lint whose document changed meanwhile is dropped."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from dllint import __version__
from dllint.findings import Finding
from dllint.index.live import LiveProjects

DEBOUNCE_SECONDS = 0.3
FIX_ALL_KIND = "source.fixAll.dllint"
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
             "info": types.DiagnosticSeverity.Information}
_IGNORE_COMMENT = re.compile(r"#\s*dllint:\s*ignore\[([^\]]*)\]")
_CONTENT_LENGTH = b"Content-Length:"


# Jupyter notebooks whose code cells are Python: the client sends them as notebook documents.
NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(notebook_selector=[types.NotebookDocumentFilterWithCells(
    cells=[types.NotebookCellLanguage(language="python")], notebook="jupyter-notebook")], save=True)


class DllintProtocol(LanguageServerProtocol):
    def handle_message(self, message):
        # The protocol says requests after `shutdown` get an InvalidRequest error, not silence.
        if self._shutdown and getattr(message, "id", None) is not None and \
                getattr(message, "method", None) not in (None, types.EXIT):
            error = JsonRpcInvalidRequest("the server is shutting down")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)


class DllintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("dllint", __version__, protocol_cls=DllintProtocol, notebook_document_sync=NOTEBOOK_SYNC)
        self.findings: Dict[str, List[Finding]] = {}  # what each document shows now
        self.last_good: Dict[str, List[Finding]] = {}  # its findings when it last parsed
        self.last_good_text: Dict[str, str] = {}  # its text then: what other documents' lints see of it
        self.broken: set = set()  # documents that do not parse now
        self.linted_text: Dict[str, str] = {}  # the text each document's diagnostics were published for
        self.versions: Dict[str, int] = {}
        self.settings_cache: Dict[str, object] = {}
        self.config_errors: set = set()  # configuration files showing an error diagnostic
        # The files linked to each open document through imports (a superset: what it was linked to at its
        # last change, and since): a file changed on disk re-lints only the documents it is linked to.
        self.linked: Dict[str, set] = {}
        self.unsaved: set = set()  # documents whose buffer differed from their file when last linted
        # Each project's walk and catalogue, reused by the next lint while they still hold.
        self.projects = LiveProjects()
        # One thread: lints never run concurrently, and the message loop stays free.
        self.lint_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dllint-lint")


class ResyncingInput:
    """stdin that recovers from a malformed message: a header line with text before
    `Content-Length:` (the tail of a body whose length was wrong or missing) is cut back to the header,
    so the next well-formed message is read again instead of every later one being lost."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def readline(self) -> bytes:
        line = self.stream.readline()
        position = line.find(_CONTENT_LENGTH)
        return line[position:] if position > 0 else line

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


server = DllintServer()


def _path(uri: str) -> str:
    from pygls.uris import to_fs_path

    return to_fs_path(uri) or uri


def _settings_for(ls: DllintServer, path: str):
    from dllint.config import command_line_layer, load_settings

    directory = os.path.dirname(os.path.abspath(path))
    if directory not in ls.settings_cache:
        ls.settings_cache[directory] = load_settings([path], command_line_layer(None, [], [], [], [], [], None))
    return ls.settings_cache[directory]


def _client_range(document, line: int, column: int, end_line: int, end_column: int) -> types.Range:
    """1-based code-point positions as the client counts them (UTF-16 unless it asked otherwise)."""
    server_range = types.Range(start=types.Position(line=line - 1, character=column - 1),
                               end=types.Position(line=end_line - 1, character=end_column - 1))
    if document is None:
        return server_range
    return document.position_codec.range_to_client_units(document.lines, server_range)


def diagnostic(finding: Finding, document=None) -> types.Diagnostic:
    from dllint.output import rule_url

    return types.Diagnostic(
        range=_client_range(document, finding.line, finding.column, finding.end_line, finding.end_column),
        message=finding.message, severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
        code=finding.code, code_description=types.CodeDescription(href=rule_url(finding.code)), source="dllint",
        data={"name": finding.name})


def _lint(ls: DllintServer, uri: str, path: str, text: str, buffers: Dict[str, str], version):
    """On the lint thread: the findings and the files linked to the document through imports (see
    lint_buffer_and_links); None when a newer version of the document made this lint stale."""
    from dllint.pipeline import lint_buffer_and_links

    if ls.versions.get(uri, version) != version:
        return None
    if _matches_disk(path, text):
        ls.unsaved.discard(uri)
    else:
        ls.unsaved.add(uri)
    return lint_buffer_and_links(path, text, _settings_for(ls, path), buffers, ls.projects)


def _matches_disk(path: str, text: str) -> bool:
    """Whether a buffer holds what its file on disk holds (then other files' lints already see it)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read() == text
    except (OSError, UnicodeDecodeError, ValueError):
        return False


async def lint_document(ls: DllintServer, uri: str) -> set:
    """Lint an open document and publish its findings. Returns the files whose findings its change
    can have changed: those linked to it through imports now or at its previous lint (an import it
    just dropped still tells which file its lint used to report into; a document that is not
    analysed now is linked to nothing now)."""
    from dllint.config import ConfigError

    document = ls.workspace.text_documents.get(uri)
    if document is None or _is_cell(ls, uri):
        return set()  # a notebook's cells are linted together, as the notebook
    path, text, version = _path(uri), document.source, document.version
    buffers = _open_buffers(ls, uri)
    try:
        linted = await asyncio.get_running_loop().run_in_executor(
            ls.lint_executor, _lint, ls, uri, path, text, buffers, version)
    except ConfigError as error:
        # Shown on the configuration file itself; the document keeps what it showed until it is fixed.
        publish_config_error(ls, path, str(error))
        return set()
    current = ls.workspace.text_documents.get(uri)
    if linted is None or current is None or current.version != version:
        return set()  # stale: the newer version's lint publishes, and re-lints what is linked to it
    findings, now = linted
    before = ls.linked.get(uri, set())
    broken = any(f.code == "DL000" for f in findings)
    if broken:
        # While the buffer does not parse, keep showing what it had when it last did, beside the error;
        # the other documents' lints keep seeing its last text that parsed, so theirs stay too.
        findings = sorted({*findings, *(f for f in ls.last_good.get(uri, []) if f.code != "DL000")})
        ls.broken.add(uri)
        changed: set = set()
    else:
        ls.last_good[uri], ls.last_good_text[uri] = findings, text
        ls.broken.discard(uri)
        now = now or set()
        _record_links(ls, now)
        ls.linked[uri] = now
        changed = now | before
    ls.findings[uri], ls.linted_text[uri] = findings, text
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, version=version, diagnostics=[diagnostic(f, current) for f in findings]))
    return changed


_CONFIG_ERROR = re.compile(r"^.*?:(\d+): (.*)$")


def publish_config_error(ls: DllintServer, path: str, message: str) -> None:
    """A bad pyproject.toml as a diagnostic on that file, at the line the error names."""
    from pygls.uris import from_fs_path

    from dllint.config import find_config_file

    config = find_config_file(os.path.dirname(os.path.abspath(path)))
    if config is None:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
        return
    match = _CONFIG_ERROR.match(message)
    line = int(match.group(1)) - 1 if match else 0
    uri = from_fs_path(config)
    ls.config_errors.add(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[types.Diagnostic(
        range=types.Range(start=types.Position(line=line, character=0), end=types.Position(line=line + 1, character=0)),
        message=match.group(2) if match else message, severity=types.DiagnosticSeverity.Error, source="dllint",
        code="config")]))


async def lint_with_dependents(ls: DllintServer, uri: str, relint_others: bool = True) -> None:
    """Lint a document, then the other open documents linked to it through imports: a change to one
    file (a model's forward) can change another's findings (the training loop that calls it). The
    links are recorded either way, for when a file changes on disk."""
    linked = await lint_document(ls, uri)
    if relint_others:
        await relint_open_documents(ls, linked, skip={uri})


async def relint_open_documents(ls: DllintServer, files: Optional[set], skip=()) -> None:
    """Lint again the open documents whose files are among `files` (None: all of them), then the
    open notebooks (they are not in the import links)."""
    for other in list(ls.workspace.text_documents):
        if other not in skip and not _is_cell(ls, other) and \
                (files is None or os.path.abspath(_path(other)) in files):
            await lint_document(ls, other)
    for notebook_uri in list(ls.workspace.notebook_documents):
        await lint_notebook(ls, notebook_uri)


def _links_of_changed_files(ls: DllintServer, paths: List[str]) -> Optional[set]:
    """On the lint thread: the files linked now to any of `paths`, files changed on disk, with the
    open buffers standing for their files (a file not analysed now is linked to nothing now: what
    it was linked to before, the open documents' links tell); None: unknown, as when a
    configuration is wrong or a file cannot be read."""
    from dllint.config import ConfigError
    from dllint.index.project_context import files_linked_to_any, project_root

    by_project: Dict[tuple, List[str]] = {}
    for path in paths:
        settings = _settings_for(ls, path)
        by_project.setdefault((project_root([path], settings.config_path), settings.config_path), []).append(path)
    linked: set = set()
    try:
        for group in by_project.values():
            settings = _settings_for(ls, group[0])
            found = files_linked_to_any(group, settings.config_path, settings.exclude, settings.base_directory,
                                        settings.respect_gitignore, _open_buffers(ls), ls.projects)
            for links in found.values():
                linked |= links or set()
    except (ConfigError, OSError):
        return None
    return linked


def _record_links(ls: DllintServer, files: set) -> None:
    """Files linked to each other now: each open document among them is linked to all of them."""
    for uri in list(ls.workspace.text_documents):
        if uri in ls.linked and os.path.abspath(_path(uri)) in files:
            ls.linked[uri] = ls.linked[uri] | files


def _is_cell(ls: DllintServer, uri: str) -> bool:
    return ls.workspace.get_notebook_document(cell_uri=uri) is not None


def _open_buffers(ls: DllintServer, except_uri: Optional[str] = None) -> Dict[str, str]:
    """Every open document (not a notebook's cell) by absolute path: it stands for its file on disk;
    one that does not parse now by its last text that did."""
    return {os.path.abspath(_path(u)): ls.last_good_text.get(u, d.source) if u in ls.broken else d.source
            for u, d in ls.workspace.text_documents.items() if u != except_uri and not _is_cell(ls, u)}


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: DllintServer, params: types.DidOpenTextDocumentParams) -> None:
    document = params.text_document
    ls.versions[document.uri] = document.version
    # A buffer opened as saved changes nothing for the other documents (their lints read the same
    # file), so an editor restoring many tabs lints each once.
    unchanged = _matches_disk(_path(document.uri), document.text)
    await lint_with_dependents(ls, document.uri, relint_others=not unchanged)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: DllintServer, params: types.DidSaveTextDocumentParams) -> None:
    uri = params.text_document.uri
    document = ls.workspace.text_documents.get(uri)
    if document is not None and ls.linted_text.get(uri) == document.source:
        # Saving the text already linted changes no findings: the other documents' lints read this
        # buffer before, and read the same text from the file now.
        ls.unsaved.discard(uri)
        return
    await lint_with_dependents(ls, uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: DllintServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    version = params.text_document.version
    ls.versions[uri] = version
    await asyncio.sleep(DEBOUNCE_SECONDS)
    if ls.versions.get(uri) == version:  # only the latest edit in a burst is linted
        await lint_with_dependents(ls, uri)


def notebook_json(ls: DllintServer, notebook: types.NotebookDocument) -> str:
    """The open notebook as .ipynb JSON (its cells' current text), which dllint lints as a notebook file."""
    cells = []
    for cell in notebook.cells:
        document = ls.workspace.text_documents.get(cell.document)
        text = document.source if document is not None else ""
        kind = "code" if cell.kind == types.NotebookCellKind.Code else "markdown"
        cells.append({"cell_type": kind, "metadata": {}, "source": text,
                      **({"execution_count": None, "outputs": []} if kind == "code" else {})})
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5})


def _lint_notebook_text(ls: DllintServer, path: str, text: str, buffers: Dict[str, str]):
    from dllint.pipeline import lint_buffer

    return lint_buffer(path, text, _settings_for(ls, path), buffers, ls.projects)


async def lint_notebook(ls: DllintServer, notebook_uri: str) -> None:
    """Lint a notebook document and publish each finding on its cell, at its line within the cell."""
    from dllint.config import ConfigError
    from dllint.notebook import NotebookError, read_notebook

    notebook = ls.workspace.get_notebook_document(notebook_uri=notebook_uri)
    if notebook is None:
        return
    version, text = notebook.version, notebook_json(ls, notebook)
    buffers = _open_buffers(ls)
    try:
        findings = await asyncio.get_running_loop().run_in_executor(
            ls.lint_executor, _lint_notebook_text, ls, _path(notebook_uri), text, buffers)
        joined = read_notebook(text)
    except (ConfigError, NotebookError) as error:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=str(error)))
        return
    current = ls.workspace.get_notebook_document(notebook_uri=notebook_uri)
    if current is None or current.version != version:
        return  # edited meanwhile: the newer version's lint publishes
    by_cell: Dict[str, List[types.Diagnostic]] = {cell.document: [] for cell in current.cells}
    for finding in findings:
        number, line = joined.cell_position(finding.line)
        end_number, end_line = joined.cell_position(finding.end_line)
        if not 1 <= number <= len(current.cells):
            continue
        cell_uri = current.cells[number - 1].document
        if end_number != number:  # a span across cells is shown on its first cell's line
            end_line, end_column = line, finding.column
        else:
            end_column = finding.end_column
        cell_finding = dataclasses.replace(finding, line=line, end_line=end_line, end_column=end_column)
        by_cell[cell_uri].append(diagnostic(cell_finding, ls.workspace.text_documents.get(cell_uri)))
    for cell_uri, diagnostics in by_cell.items():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=diagnostics))


@server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
async def notebook_did_open(ls: DllintServer, params: types.DidOpenNotebookDocumentParams) -> None:
    await lint_notebook(ls, params.notebook_document.uri)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
async def notebook_did_change(ls: DllintServer, params: types.DidChangeNotebookDocumentParams) -> None:
    uri, version = params.notebook_document.uri, params.notebook_document.version
    ls.versions[uri] = version
    await asyncio.sleep(DEBOUNCE_SECONDS)
    if ls.versions.get(uri) == version:
        await lint_notebook(ls, uri)


@server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
async def notebook_did_save(ls: DllintServer, params: types.DidSaveNotebookDocumentParams) -> None:
    await lint_notebook(ls, params.notebook_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
async def did_close(ls: DllintServer, params: types.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    linked = ls.linked.get(uri)
    for held in (ls.findings, ls.last_good, ls.last_good_text, ls.linted_text, ls.versions, ls.linked):
        held.pop(uri, None)
    ls.broken.discard(uri)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    if uri in ls.unsaved:
        # Changes discarded: the documents linked to it saw its buffer, and now see its file again.
        ls.unsaved.discard(uri)
        await relint_open_documents(ls, linked)


# The files whose change on disk can change what open documents show.
WATCHED_GLOBS = ("**/*.py", "**/*.ipynb", "**/pyproject.toml")
# A folder created or deleted as a whole (a `git checkout`, `rm -r`, a move) is reported as one event
# for the folder, which the globs above do not match: creations and deletions of any path are asked
# for too.
WATCHED_FOLDERS = types.FileSystemWatcher(glob_pattern="**/*", kind=types.WatchKind.Create | types.WatchKind.Delete)


@server.feature(types.INITIALIZED)
def initialized(ls: DllintServer, params: types.InitializedParams) -> None:
    """Ask a client that lets servers register file watchers to report changes of the files that
    matter (a pull, a branch switch, another editor), so the index and the open documents follow."""
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace is not None else None
    if watched is None or not watched.dynamic_registration:
        return  # the client watches what it was configured to watch, if anything
    ls.client_register_capability(types.RegistrationParams(registrations=[types.Registration(
        id="dllint-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
        register_options=types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[*(types.FileSystemWatcher(glob_pattern=glob) for glob in WATCHED_GLOBS), WATCHED_FOLDERS]))]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched_files(ls: DllintServer, params: types.DidChangeWatchedFilesParams) -> None:
    settings_changed = any(change.uri.endswith("pyproject.toml") for change in params.changes)
    if settings_changed:
        ls.settings_cache.clear()
        ls.projects.clear()
        for config_uri in ls.config_errors:  # published again below if still wrong
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=config_uri, diagnostics=[]))
        ls.config_errors.clear()
    if settings_changed:
        await relint_open_documents(ls, None)
        return
    # A source file changed on disk (a pull, another editor, a branch switch): the open documents
    # linked to it before or after the change may have other findings. An open document's own file
    # changes nothing: its buffer stands for it.
    open_files = {os.path.abspath(_path(uri)) for uri in ls.workspace.text_documents}
    changed: set = set()
    for change in params.changes:
        path = os.path.abspath(_path(change.uri))
        if change.uri.endswith((".py", ".ipynb")):
            changed.add(path)
        elif change.uri.endswith("pyproject.toml"):
            continue
        elif os.path.isdir(path):
            # A folder created or moved here: the project's files below it appeared.
            changed |= await asyncio.get_running_loop().run_in_executor(
                ls.lint_executor, _project_files_below, ls, path)
        else:
            # A folder deleted or moved away is reported as one event for the folder (the **/*.py
            # watchers do not match it): every file known below it is gone.
            changed |= _files_known_below(ls, path)
    changed -= open_files
    if not changed:
        return
    affected: Optional[set] = set(changed)
    for uri in list(ls.workspace.text_documents):
        if _is_cell(ls, uri):
            continue
        links = ls.linked.get(uri)
        if links is None or links & changed:  # unknown links: it may depend on anything
            affected.add(os.path.abspath(_path(uri)))
    # Deleted files: only the documents linked to them before can tell.
    present = sorted(path for path in changed if os.path.exists(path))
    if present:
        now = await asyncio.get_running_loop().run_in_executor(ls.lint_executor, _links_of_changed_files, ls, present)
        if now is None:
            affected = None
        else:
            _record_links(ls, now)
            affected |= now
    await relint_open_documents(ls, affected)


def _project_files_below(ls: DllintServer, folder: str) -> set:
    """On the lint thread: the files of the project's walk (its excludes applied) below `folder`."""
    from dllint.config import ConfigError
    from dllint.discovery import DEFAULT_EXCLUDES, PathError
    from dllint.index.project_context import project_root

    try:
        settings = _settings_for(ls, folder)
        root = project_root([folder], settings.config_path)
        found = ls.projects.discover(root, settings.exclude or DEFAULT_EXCLUDES, settings.base_directory,
                                     settings.respect_gitignore)
    except (ConfigError, OSError, PathError):
        return set()
    prefix = folder.rstrip(os.sep) + os.sep
    return {path for path in map(os.path.abspath, found.files) if path.startswith(prefix)}


def _files_known_below(ls: DllintServer, folder: str) -> set:
    """The files below `folder` that the server knew of: in the project walks it keeps, among the
    files linked to the open documents."""
    prefix = folder.rstrip(os.sep) + os.sep
    known = set(ls.projects.known_files()).union(*ls.linked.values())
    return {path for path in known if path.startswith(prefix)}


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND]))
def code_action(ls: DllintServer, params: types.CodeActionParams) -> List[types.CodeAction]:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    findings = ls.findings.get(uri, [])
    only = params.context.only if params.context is not None else None
    wants_fix_all = not only or any(FIX_ALL_KIND.startswith(kind) for kind in only)
    actions: List[types.CodeAction] = []
    if not only or any(kind.startswith(types.CodeActionKind.QuickFix) for kind in only):
        wanted = params.range
        for finding in findings:
            if finding.line - 1 > wanted.end.line or finding.end_line - 1 < wanted.start.line:
                continue
            if finding.fix:
                actions.append(fix_action(uri, finding, document))
            ignore = ignore_action(uri, finding, document)
            if ignore is not None:
                actions.append(ignore)
    if wants_fix_all:
        fix_all = fix_all_action(uri, findings, document)
        if fix_all is not None:
            actions.append(fix_all)
    return actions


def fix_action(uri: str, finding: Finding, document=None) -> types.CodeAction:
    edits = [types.TextEdit(range=_client_range(document, e["line"], e["column"], e["end_line"], e["end_column"]),
                            new_text=e["content"]) for e in finding.fix["edits"]]
    unsafe = finding.fix["applicability"] != "safe"
    return types.CodeAction(title=f"{finding.code}: {finding.fix['message']}" + (" (unsafe)" if unsafe else ""),
                            kind=types.CodeActionKind.QuickFix, is_preferred=not unsafe,
                            diagnostics=[diagnostic(finding, document)],
                            edit=types.WorkspaceEdit(changes={uri: edits}))


def fix_all_action(uri: str, findings: List[Finding], document) -> Optional[types.CodeAction]:
    """Every safe fix of the document at once (editors run it on save), as one edit of the whole text."""
    from dllint.fixes import SAFE, apply_edits

    safe = [f.fix for f in findings if f.fix and f.fix["applicability"] == SAFE]
    if not safe or document is None:
        return None
    text, applied = apply_edits(document.source, safe)
    if not applied or text == document.source:
        return None
    lines = document.lines
    end = types.Position(line=len(lines), character=0)
    edit = types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end), new_text=text)
    return types.CodeAction(title="dllint: apply all safe fixes", kind=FIX_ALL_KIND,
                            edit=types.WorkspaceEdit(changes={uri: [edit]}))


def ignore_action(uri: str, finding: Finding, document) -> Optional[types.CodeAction]:
    """Add `# dllint: ignore[CODE]` at the end of the finding's line (or extend an existing one)."""
    lines = document.lines
    index = finding.line - 1
    if index >= len(lines):
        return None
    text = lines[index].rstrip("\r\n")
    existing = _IGNORE_COMMENT.search(text)
    if existing:
        codes = [c.strip() for c in existing.group(1).split(",") if c.strip()]
        if finding.code in codes:
            return None
        start, end = existing.span(1)
        new_text = ", ".join(codes + [finding.code])
    else:
        start = end = len(text)
        new_text = f"  # dllint: ignore[{finding.code}]"
    edit = types.TextEdit(range=_client_range(document, finding.line, start + 1, finding.line, end + 1),
                          new_text=new_text)
    return types.CodeAction(title=f"Ignore {finding.code} on this line", kind=types.CodeActionKind.QuickFix,
                            diagnostics=[diagnostic(finding, document)], edit=types.WorkspaceEdit(changes={uri: [edit]}))


def main() -> None:
    import sys

    server.start_io(stdin=ResyncingInput(sys.stdin.buffer))
