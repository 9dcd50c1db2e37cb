"""dllint as a language server: lints open buffers on open, change (debounced) and save, offers
quick fixes and ignore comments, and reloads settings when a pyproject.toml changes."""

from __future__ import annotations

import asyncio
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

DEBOUNCE_SECONDS = 0.3
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
             "info": types.DiagnosticSeverity.Information}
_IGNORE_COMMENT = re.compile(r"#\s*dllint:\s*ignore\[([^\]]*)\]")


class DllintProtocol(LanguageServerProtocol):
    def handle_message(self, message):
        # The protocol answers a request after `shutdown` with InvalidRequest; pygls drops it, and a
        # client waiting for the answer hangs.
        if self._shutdown and getattr(message, "id", None) is not None and \
                getattr(message, "method", "exit") != "exit":
            error = JsonRpcInvalidRequest(message="the server is shutting down")
            self._send_response(message.id, error=error.to_response_error())
            return
        super().handle_message(message)


class DllintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("dllint", __version__, protocol_cls=DllintProtocol)
        self.findings: Dict[str, List[Finding]] = {}
        self.versions: Dict[str, int] = {}
        self.settings_cache: Dict[str, object] = {}
        # Lints run one at a time, off the message loop: a large file must not stop the server from
        # answering, and an edit made meanwhile makes the result stale (not published).
        self.linter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dllint-lint")


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


def client_range(document, line: int, column: int, end_line: int, end_column: int) -> types.Range:
    """A range of 1-based lines and code-point columns, in the units the client negotiated (UTF-16
    unless it chose otherwise): after an emoji the two differ."""
    server_range = types.Range(start=types.Position(line=line - 1, character=column - 1),
                               end=types.Position(line=end_line - 1, character=end_column - 1))
    if document is None:
        return server_range
    return document.position_codec.range_to_client_units(document.lines, server_range)


def diagnostic(finding: Finding, document=None) -> types.Diagnostic:
    from dllint.output import rule_url

    return types.Diagnostic(
        range=client_range(document, finding.line, finding.column, finding.end_line, finding.end_column),
        message=finding.message, severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
        code=finding.code, code_description=types.CodeDescription(href=rule_url(finding.code)), source="dllint",
        data={"name": finding.name})


def _lint_text(ls: DllintServer, path: str, text: str, buffers):
    from dllint.config import ConfigError
    from dllint.pipeline import lint_buffer

    try:
        return lint_buffer(path, text, _settings_for(ls, path), buffers), None
    except ConfigError as error:
        return [], str(error)


async def lint_document(ls: DllintServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    version, text = document.version, document.source
    # Every open document stands for its file on disk, saved or not.
    buffers = {os.path.abspath(_path(u)): d.source for u, d in ls.workspace.text_documents.items() if u != uri}
    findings, error = await asyncio.get_running_loop().run_in_executor(
        ls.linter, _lint_text, ls, _path(uri), text, buffers)
    document = ls.workspace.get_text_document(uri)
    if document.version != version or document.source != text:
        return  # edited meanwhile: the lint of the newer text publishes
    if error is not None:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=error))
    # The buffer is reported under its own name, whatever the working directory.
    ls.findings[uri] = findings
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, version=document.version, diagnostics=[diagnostic(f, document) for f in findings]))


async def lint_with_dependents(ls: DllintServer, uri: str) -> None:
    """Lint a document, then the other open documents: a change to one file (a model's forward)
    can change another's findings (the training loop that calls it)."""
    await lint_document(ls, uri)
    for other in list(ls.findings):
        if other != uri and other in ls.workspace.text_documents:
            await lint_document(ls, other)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: DllintServer, params: types.DidOpenTextDocumentParams) -> None:
    await lint_with_dependents(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
async def did_save(ls: DllintServer, params: types.DidSaveTextDocumentParams) -> None:
    await lint_with_dependents(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: DllintServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    version = params.text_document.version
    ls.versions[uri] = version
    await asyncio.sleep(DEBOUNCE_SECONDS)
    if ls.versions.get(uri) == version:  # only the latest edit in a burst is linted
        await lint_with_dependents(ls, uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: DllintServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.findings.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                        diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
async def did_change_watched_files(ls: DllintServer, params: types.DidChangeWatchedFilesParams) -> None:
    if any(change.uri.endswith("pyproject.toml") for change in params.changes):
        ls.settings_cache.clear()
        for uri in list(ls.findings):
            await lint_document(ls, uri)


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
def code_action(ls: DllintServer, params: types.CodeActionParams) -> List[types.CodeAction]:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    lines = document.lines
    wanted = params.range
    actions: List[types.CodeAction] = []
    for finding in ls.findings.get(uri, []):
        if finding.line - 1 > wanted.end.line or finding.end_line - 1 < wanted.start.line:
            continue
        if finding.fix:
            actions.append(fix_action(uri, finding, document))
        ignore = ignore_action(uri, finding, lines, document)
        if ignore is not None:
            actions.append(ignore)
    return actions


def fix_action(uri: str, finding: Finding, document=None) -> types.CodeAction:
    edits = [types.TextEdit(range=client_range(document, e["line"], e["column"], e["end_line"], e["end_column"]),
                            new_text=e["content"]) for e in finding.fix["edits"]]
    unsafe = finding.fix["applicability"] != "safe"
    return types.CodeAction(title=f"{finding.code}: {finding.fix['message']}" + (" (unsafe)" if unsafe else ""),
                            kind=types.CodeActionKind.QuickFix, is_preferred=not unsafe,
                            diagnostics=[diagnostic(finding, document)],
                            edit=types.WorkspaceEdit(changes={uri: edits}))


def ignore_action(uri: str, finding: Finding, lines: List[str], document=None) -> Optional[types.CodeAction]:
    """Add `# dllint: ignore[CODE]` at the end of the finding's line (or extend an existing one)."""
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
    edit = types.TextEdit(range=client_range(document, index + 1, start + 1, index + 1, end + 1), new_text=new_text)
    return types.CodeAction(title=f"Ignore {finding.code} on this line", kind=types.CodeActionKind.QuickFix,
                            diagnostics=[diagnostic(finding, document)], edit=types.WorkspaceEdit(changes={uri: [edit]}))


def main() -> None:
    server.start_io()
