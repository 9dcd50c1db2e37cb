"""dllint as a language server: lints open buffers on open, change (debounced) and save, offers
quick fixes and ignore comments, and reloads settings when a pyproject.toml changes."""

from __future__ import annotations

import asyncio
import os
import re
from typing import Dict, List, Optional

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from dllint import __version__
from dllint.findings import Finding

DEBOUNCE_SECONDS = 0.3
_SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
             "info": types.DiagnosticSeverity.Information}
_IGNORE_COMMENT = re.compile(r"#\s*dllint:\s*ignore\[([^\]]*)\]")


class DllintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("dllint", __version__)
        self.findings: Dict[str, List[Finding]] = {}
        self.versions: Dict[str, int] = {}
        self.settings_cache: Dict[str, object] = {}


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


def diagnostic(finding: Finding) -> types.Diagnostic:
    from dllint.output import rule_url

    return types.Diagnostic(
        range=types.Range(start=types.Position(line=finding.line - 1, character=finding.column - 1),
                          end=types.Position(line=finding.end_line - 1, character=finding.end_column - 1)),
        message=finding.message, severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
        code=finding.code, code_description=types.CodeDescription(href=rule_url(finding.code)), source="dllint",
        data={"name": finding.name})


def lint_document(ls: DllintServer, uri: str) -> None:
    from dllint.config import ConfigError
    from dllint.pipeline import lint_buffer

    document = ls.workspace.get_text_document(uri)
    path = _path(uri)
    # Every open document stands for its file on disk, saved or not.
    buffers = {os.path.abspath(_path(u)): d.source for u, d in ls.workspace.text_documents.items() if u != uri}
    try:
        findings = lint_buffer(path, document.source, _settings_for(ls, path), buffers)
    except ConfigError as error:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=str(error)))
        findings = []
    # The buffer is reported under its own name, whatever the working directory.
    ls.findings[uri] = findings
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, version=document.version, diagnostics=[diagnostic(f) for f in findings]))


def lint_with_dependents(ls: DllintServer, uri: str) -> None:
    """Lint a document, then the other open documents: a change to one file (a model's forward)
    can change another's findings (the training loop that calls it)."""
    lint_document(ls, uri)
    for other in list(ls.findings):
        if other != uri and other in ls.workspace.text_documents:
            lint_document(ls, other)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: DllintServer, params: types.DidOpenTextDocumentParams) -> None:
    lint_with_dependents(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: DllintServer, params: types.DidSaveTextDocumentParams) -> None:
    lint_with_dependents(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: DllintServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    version = params.text_document.version
    ls.versions[uri] = version
    await asyncio.sleep(DEBOUNCE_SECONDS)
    if ls.versions.get(uri) == version:  # only the latest edit in a burst is linted
        lint_with_dependents(ls, uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: DllintServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.findings.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                        diagnostics=[]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def did_change_watched_files(ls: DllintServer, params: types.DidChangeWatchedFilesParams) -> None:
    if any(change.uri.endswith("pyproject.toml") for change in params.changes):
        ls.settings_cache.clear()
        for uri in list(ls.findings):
            lint_document(ls, uri)


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
            actions.append(fix_action(uri, finding))
        ignore = ignore_action(uri, finding, lines)
        if ignore is not None:
            actions.append(ignore)
    return actions


def fix_action(uri: str, finding: Finding) -> types.CodeAction:
    edits = [types.TextEdit(range=types.Range(start=types.Position(line=e["line"] - 1, character=e["column"] - 1),
                                              end=types.Position(line=e["end_line"] - 1,
                                                                 character=e["end_column"] - 1)),
                            new_text=e["content"]) for e in finding.fix["edits"]]
    unsafe = finding.fix["applicability"] != "safe"
    return types.CodeAction(title=f"{finding.code}: {finding.fix['message']}" + (" (unsafe)" if unsafe else ""),
                            kind=types.CodeActionKind.QuickFix, is_preferred=not unsafe,
                            diagnostics=[diagnostic(finding)],
                            edit=types.WorkspaceEdit(changes={uri: edits}))


def ignore_action(uri: str, finding: Finding, lines: List[str]) -> Optional[types.CodeAction]:
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
    edit = types.TextEdit(range=types.Range(start=types.Position(line=index, character=start),
                                            end=types.Position(line=index, character=end)), new_text=new_text)
    return types.CodeAction(title=f"Ignore {finding.code} on this line", kind=types.CodeActionKind.QuickFix,
                            diagnostics=[diagnostic(finding)], edit=types.WorkspaceEdit(changes={uri: [edit]}))


def main() -> None:
    server.start_io()
