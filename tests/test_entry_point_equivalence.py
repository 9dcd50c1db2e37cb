"""Every entry point gives a file of a multi-file fixture package the findings a run over the whole
package gives it (issue 19): the language server with the files open, pre-commit naming them in two
batches, with any number of jobs, with the cache cold or warm, and stdin under the file's name from
any working directory. (test_project_context.py compares single-file runs, buffers and stdin.)"""

import json
import os
import shutil
import time

import pytest

from dllint.config import command_line_layer, load_settings
from dllint.runner import lint_paths
from tests.conftest import FIXTURES
from tests.expectations import linted_files, python_files
from tests.invoke import invoke
from tests.test_project_context import ALL_CODES, LOGITS_MODELS, MODELS, PACKAGES, TRAIN

NOTEBOOKS = os.path.join(FIXTURES, "notebooks")


def _utf16_column(path, line, column):
    """A 1-based code-point column as the 0-based UTF-16 character an LSP client counts."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read().split("\n")[line - 1]
    return len(text[:column - 1].encode("utf-16-le")) // 2


def test_the_language_server_shows_each_open_file_the_findings_of_the_whole_run():
    """One server, every file of every fixture package open at once (package by package), as an
    editor restoring its tabs: each file's diagnostics are those of `dllint PACKAGE`."""
    pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")
    from pygls.uris import from_fs_path

    from tests.test_lsp import Client

    codes = load_settings([FIXTURES], command_line_layer(None, [], [], [], [], [], None)).active_codes
    # One run over every package: side by side they share nothing (test_fixtures.py proves it).
    whole = {}
    for f in lint_paths(PACKAGES, codes).findings:
        path = os.path.abspath(f.path)
        whole.setdefault(from_fs_path(path), []).append(
            (f.line - 1, _utf16_column(path, f.line, f.column), f.code, f.message))
    assert len(whole) >= len(PACKAGES) // 2  # most packages have findings to compare
    lsp = Client(FIXTURES)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": from_fs_path(FIXTURES), "capabilities": {}})
        lsp.send("initialized", {})
        closed = set()
        for package in PACKAGES:
            files = python_files(package)
            expected = {uri: sorted(whole.get(uri, [])) for uri in map(from_fs_path, files)}
            for path in files:
                with open(path, encoding="utf-8") as handle:
                    lsp.send("textDocument/didOpen", {"textDocument": {
                        "uri": from_fs_path(path), "languageId": "python", "version": 1, "text": handle.read()}})
            shown = {}

            def settled(message):
                if message.get("method") != "textDocument/publishDiagnostics":
                    return False
                uri, diagnostics = message["params"]["uri"], message["params"]["diagnostics"]
                if uri in closed:  # a document closed earlier shows nothing
                    assert diagnostics == [], uri
                    return False
                keys = sorted((d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"],
                               d["message"]) for d in diagnostics)
                # Every publish, not only the last: the files' buffers equal the disk, so none may differ.
                assert keys == expected[uri], f"{uri}: shown {keys}, the package run gives {expected[uri]}"
                shown[uri] = keys
                return shown.keys() == expected.keys()

            lsp.wait_for(settled, timeout=60)
            for uri in expected:
                lsp.send("textDocument/didClose", {"textDocument": {"uri": uri}})
            closed |= expected.keys()
    finally:
        lsp.close()
