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
from tests.test_project_context import MODELS, PACKAGES, TRAIN

NOTEBOOKS = os.path.join(FIXTURES, "notebooks")


def _utf16_column(path, line, column):
    """A 1-based code-point column as the 0-based UTF-16 character an LSP client counts."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read().split("\n")[line - 1]
    return len(text[:column - 1].encode("utf-16-le")) // 2


@pytest.fixture(scope="module")
def packages_copy(tmp_path_factory):
    """Every multi-file fixture package and the notebooks, side by side in one project of their own
    (where a cache may be written), with every rule selected."""
    root = tmp_path_factory.mktemp("packages")
    for unit in (*PACKAGES, NOTEBOOKS):
        shutil.copytree(unit, root / os.path.basename(unit))
    (root / "pyproject.toml").write_text('[tool.dllint]\nselect = ["ALL"]\n')
    return root


@pytest.fixture(scope="module")
def whole_run(packages_copy):
    """{(path, line, column, code, message)} of one serial run over the whole copy, without a cache."""
    whole = _reported(invoke("--format", "json", "--no-cache", "--jobs", "1", ".", cwd=packages_copy))
    assert len({path for path, *_ in whole}) >= 20 and any(p.endswith(".ipynb") for p, *_ in whole)
    return whole


def test_the_language_server_shows_each_open_file_the_findings_of_the_whole_run(packages_copy, whole_run):
    """One server, every file of every fixture package open at once (package by package), as an
    editor restoring its tabs: each file's diagnostics are those of the run over the whole project."""
    pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")
    from pygls.uris import from_fs_path

    from tests.test_lsp import Client

    whole = {}
    for path, line, column, code, message in whole_run:
        path = str(packages_copy / path)
        whole.setdefault(from_fs_path(path), []).append((line - 1, _utf16_column(path, line, column), code, message))
    lsp = Client(packages_copy)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": packages_copy.as_uri(), "capabilities": {}})
        lsp.send("initialized", {})
        closed = set()
        for package in PACKAGES:
            files = python_files(str(packages_copy / os.path.basename(package)))
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
                assert keys == expected[uri], f"{uri}: shown {keys}, the whole run gives {expected[uri]}"
                shown[uri] = keys
                return shown.keys() == expected.keys()

            lsp.wait_for(settled, timeout=60)
            for uri in expected:
                lsp.send("textDocument/didClose", {"textDocument": {"uri": uri}})
            closed |= expected.keys()
    finally:
        lsp.close()


def _reported(result):
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return {(f["path"], f["line"], f["column"], f["code"], f["message"]) for f in json.loads(result.stdout)}


def _hook_arguments():
    """The arguments pre-commit gives dllint before the file names, from .pre-commit-hooks.yaml."""
    import yaml

    from tests.conftest import ROOT

    with open(os.path.join(ROOT, ".pre-commit-hooks.yaml"), encoding="utf-8") as handle:
        hook = next(h for h in yaml.safe_load(handle) if h["id"] == "dllint")
    command, *arguments = hook["entry"].split()
    assert command == "dllint"
    return arguments, hook


def test_pre_commit_batches_jobs_and_the_cache_leave_each_files_findings_as_the_whole_run(packages_copy, whole_run):
    """pre-commit names the staged files and, without require_serial, splits them between processes:
    each process lints its batch in parallel workers, with a cache filled by the other or by nothing.
    The union is what one serial run over the whole project without a cache reports."""
    arguments, hook = _hook_arguments()
    assert hook["types_or"] == ["python", "jupyter"]  # notebooks are linted, so the hook takes them
    whole = whole_run
    files = [os.path.relpath(path, packages_copy) for path in linted_files(str(packages_copy))]
    # Interleaved, so that every package has files in both batches.
    batches = [files[0::2], files[1::2]]
    assert min(map(len, batches)) >= 8  # enough files for worker processes

    def hook_run(batch):
        return _reported(invoke(*arguments, "--format", "json", "--jobs", "2", *batch, cwd=packages_copy))

    cold = set().union(*map(hook_run, batches))
    assert cold == whole
    assert os.path.isdir(packages_copy / ".dllint_cache")
    warm = set().union(*map(hook_run, reversed(batches)))  # answered from what both batches cached
    assert warm == whole
    assert _reported(invoke("--format", "json", "--jobs", "2", ".", cwd=packages_copy)) == whole


def test_stdin_gets_the_project_of_its_name_from_any_working_directory(tmp_path):
    """An editor integration pipes the buffer from wherever it runs: the name alone places it in its
    project (models.py next to it says what the model returns)."""
    project = tmp_path / "digits"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'digits'\n")
    (project / "models.py").write_text(MODELS)
    (project / "train.py").write_text("import torch\n")  # the saved file is a stub
    elsewhere = tmp_path / "editor"
    elsewhere.mkdir()
    for name, cwd in ((str(project / "train.py"), elsewhere), (os.path.join("digits", "train.py"), tmp_path),
                      ("train.py", project)):
        result = invoke("--format", "json", "--stdin-filename", name, "-", cwd=cwd, input=TRAIN)
        assert [(f["line"], f["code"]) for f in json.loads(result.stdout)] == [(14, "DL201")], (name, cwd)


def test_the_language_server_shows_each_fixture_notebook_the_findings_of_the_command_line():
    """Notebooks opened as notebook documents (cells sent one by one): each cell shows the findings
    `dllint NOTEBOOK` reports in it, at the same line of the cell."""
    pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")
    from pygls.uris import from_fs_path

    from dllint.notebook import read_notebook
    from tests.expectations import notebook_cells
    from tests.test_lsp import Client

    notebooks = linted_files(NOTEBOOKS)
    codes = load_settings([NOTEBOOKS], command_line_layer(None, [], [], [], [], [], None)).active_codes
    expected = {}
    for path in notebooks:
        cells = notebook_cells(path)
        uris = [f"vscode-notebook-cell:{path}#cell{number}" for number, _, _ in cells]
        expected.update({uri: [] for uri in uris})
        with open(path, encoding="utf-8") as handle:
            joined = read_notebook(handle.read())
        for f in lint_paths([path], codes).findings:
            number, line = joined.cell_position(f.line)
            text = cells[number - 1][2].split("\n")[line - 1]
            expected[uris[number - 1]].append(
                (line - 1, len(text[:f.column - 1].encode("utf-16-le")) // 2, f.code, f.message))
    assert sum(map(len, expected.values())) >= 2
    lsp = Client(NOTEBOOKS)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": from_fs_path(NOTEBOOKS), "capabilities": {}})
        lsp.send("initialized", {})
        for path in notebooks:
            cells = notebook_cells(path)
            uris = [f"vscode-notebook-cell:{path}#cell{number}" for number, _, _ in cells]
            lsp.send("notebookDocument/didOpen", {
                "notebookDocument": {"uri": from_fs_path(path), "notebookType": "jupyter-notebook", "version": 1,
                                     "cells": [{"kind": 2 if kind == "code" else 1, "document": uri}
                                               for (_, kind, _), uri in zip(cells, uris)]},
                "cellTextDocuments": [{"uri": uri, "languageId": "python" if kind == "code" else "markdown",
                                       "version": 1, "text": text} for (_, kind, text), uri in zip(cells, uris)]})
        shown = {}

        def all_shown(message):
            if message.get("method") == "textDocument/publishDiagnostics":
                shown[message["params"]["uri"]] = sorted(
                    (d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"], d["message"])
                    for d in message["params"]["diagnostics"])
            return shown.keys() >= expected.keys()

        lsp.wait_for(all_shown, timeout=60)
        assert {uri: shown[uri] for uri in expected} == {uri: sorted(keys) for uri, keys in expected.items()}
    finally:
        lsp.close()


def test_the_language_server_follows_edits_creations_and_deletions_as_a_fresh_run_would(tmp_path):
    """The server keeps each project's walk and catalogue between lints: after every step of a
    session (a module moved into a new package folder, an import edited in a buffer, a file changed on
    disk, a file that stops being analysed, the package folder deleted whole, the module recreated),
    each open document shows what a fresh run over the files on disk gives it."""
    pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")
    from tests.test_lsp import Client

    project = tmp_path / "project"
    package = project / "kws"
    shutil.copytree(os.path.join(FIXTURES, "pkg_loss_keyword_spotting"), package)
    (project / "pyproject.toml").write_text('[tool.dllint]\nselect = ["ALL"]\n')
    opened = ["train.py", "data.py"]
    uris = {name: (package / name).as_uri() for name in opened}
    versions = dict.fromkeys(opened, 1)
    shown = {}

    def record(message):
        if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] in shown:
            shown[message["params"]["uri"]] = sorted(
                (d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"], d["message"])
                for d in message["params"]["diagnostics"])
        return False

    def expected_now():
        whole = {}
        for path, line, column, code, message in _reported(invoke("--format", "json", "--no-cache", ".",
                                                                   cwd=project)):
            path = str(project / path)
            whole.setdefault(path, []).append((line - 1, _utf16_column(path, line, column), code, message))
        return {uris[name]: sorted(whole.get(str(package / name), [])) for name in opened}

    def settle(step):
        expected = expected_now()
        deadline = time.monotonic() + 30
        while shown != expected and time.monotonic() < deadline:
            try:
                lsp.wait_for(lambda m: record(m) or shown == expected, timeout=deadline - time.monotonic())
            except AssertionError:
                break
        assert shown == expected, f"after {step}: the server shows {shown}, a fresh run gives {expected}"
        return expected

    def edit(name, old, new):
        text = (package / name).read_text().replace(old, new)
        assert text != (package / name).read_text()
        versions[name] += 1
        lsp.send("textDocument/didChange", {"textDocument": {"uri": uris[name], "version": versions[name]},
                                            "contentChanges": [{"text": text}]})
        (package / name).write_text(text)
        lsp.send("textDocument/didSave", {"textDocument": {"uri": uris[name]}})

    def on_disk(*changes):
        # The folders just modified dated back a minute, as if the change were that old: the server
        # keeps its walk of folders it read that are unchanged since (one modified within the last
        # two seconds it walks again every time, since a second change could keep its time).
        for folder, _, _ in os.walk(project):
            modified = os.stat(folder).st_mtime_ns
            if modified > time.time_ns() - 10_000_000_000:
                os.utime(folder, ns=(modified - 60_000_000_000, modified - 60_000_000_000))
        lsp.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": path.as_uri(), "type": kind}
                                                                 for path, kind in changes]})

    lsp = Client(project)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": project.as_uri(), "capabilities": {}})
        lsp.send("initialized", {})
        for name in opened:
            shown[uris[name]] = None
            lsp.send("textDocument/didOpen", {"textDocument": {"uri": uris[name], "languageId": "python",
                                                               "version": 1, "text": (package / name).read_text()}})
        on_disk()
        seen = [settle("opening")]
        nets = package / "nets"
        nets.mkdir()
        (nets / "__init__.py").write_text("")
        shutil.move(package / "models.py", nets / "models.py")
        on_disk((nets, 1), (package / "models.py", 3))
        seen.append(settle("moving models.py into a new folder"))
        edit("train.py", "from models import", "from nets.models import")
        seen.append(settle("editing the import"))
        (nets / "models.py").write_text((nets / "models.py").read_text().replace(
            "return F.softmax(self.classifier(x), dim=-1)", "return self.classifier(x)"))
        on_disk((nets / "models.py", 2))
        seen.append(settle("changing the model on disk"))
        edit("data.py", "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n", "")
        seen.append(settle("data.py no longer analysed"))
        (nets / "models.py").write_text(open(os.path.join(FIXTURES, "pkg_loss_keyword_spotting", "models.py")).read())
        on_disk((nets / "models.py", 2))
        seen.append(settle("the softmax back"))
        shutil.rmtree(nets)
        on_disk((nets, 3))
        seen.append(settle("deleting the folder"))
        shutil.copy(os.path.join(FIXTURES, "pkg_loss_keyword_spotting", "models.py"), package / "models.py")
        on_disk((package / "models.py", 1))
        edit("train.py", "from nets.models import", "from models import")
        seen.append(settle("recreating models.py and importing it again"))
        # The steps changed what the documents show, back and forth: the softmax goes with the model
        # returning logits and with the folder, and comes back with the module.
        assert [[code for *_, code, _ in s[uris["train.py"]]] == ["DL201"] for s in seen] == \
            [True, True, True, False, False, True, False, True]
    finally:
        lsp.close()
