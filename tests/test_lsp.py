"""The language server end to end: a real `dllint server` process spoken to over LSP on stdio."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import FIXTURES, ROOT

pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")

BUGGY = """import torch

def train(model, loader, optimizer):
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
"""
FIXED = BUGGY.replace("    for x, y in loader:\n", "    for x, y in loader:\n        optimizer.zero_grad()\n")


class Client:
    """A minimal LSP client: Content-Length framed JSON-RPC over the server's stdin/stdout."""

    def __init__(self, cwd):
        self.process = subprocess.Popen([sys.executable, "-m", "dllint", "server"], cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, "PYTHONPATH": ROOT})
        self.messages = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stream = self.process.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = stream.read(1)
                if not byte:
                    return
                header += byte
            length = int([line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")][0]
                         .split(b":")[1])
            self.messages.put(json.loads(stream.read(length)))

    def send(self, method, params, request=False):
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return message.get("id")

    def wait_for(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if predicate(message):
                return message
        raise AssertionError("the server did not answer in time")

    def request(self, method, params):
        identifier = self.send(method, params, request=True)
        return self.wait_for(lambda m: m.get("id") == identifier and "method" not in m)["result"]

    def diagnostics(self, uri):
        return self.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                             and m["params"]["uri"] == uri)["params"]["diagnostics"]

    def close(self):
        try:
            self.request("shutdown", None)
            self.send("exit", None)
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def client(tmp_path):
    lsp = Client(tmp_path)
    lsp.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
    lsp.send("initialized", {})
    yield lsp
    lsp.close()


def test_diagnostics_follow_the_buffer(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": BUGGY}})
    diagnostics = client.diagnostics(uri)
    assert [(d["code"], d["range"]["start"], d["severity"], d["source"]) for d in diagnostics] == \
        [("DL101", {"line": 6, "character": 8}, 1, "dllint")]
    assert diagnostics[0]["codeDescription"]["href"].endswith("rules/DL101.md")
    client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                           "contentChanges": [{"text": FIXED}]})
    assert client.diagnostics(uri) == []


def test_code_actions_add_an_ignore_comment_and_apply_fixes(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": BUGGY}})
    diagnostic = client.diagnostics(uri)[0]
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}})
    titles = [a["title"] for a in actions]
    assert "Ignore DL101 on this line" in titles
    ignore = next(a for a in actions if a["title"] == "Ignore DL101 on this line")
    edit = ignore["edit"]["changes"][uri][0]
    assert edit["newText"] == "  # dllint: ignore[DL101]" and edit["range"]["start"]["line"] == 6
    fix = next(a for a in actions if a["title"].startswith("DL101: call optimizer.zero_grad()"))
    inserted = fix["edit"]["changes"][uri][0]
    assert "optimizer.zero_grad()" in inserted["newText"] and inserted["range"]["start"]["line"] == 5


def test_a_changed_pyproject_reloads_the_settings(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": BUGGY}})
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL101"]
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nignore = ["DL101"]\n')
    client.send("workspace/didChangeWatchedFiles",
                {"changes": [{"uri": (tmp_path / "pyproject.toml").as_uri(), "type": 1}]})
    assert client.diagnostics(uri) == []


def test_the_server_runs_the_default_selection_and_an_opt_in_rule_once_configured(client, tmp_path):
    """DL509 is opt-in: quiet in an editor as on the command line until the configuration selects it."""
    with open(os.path.join(FIXTURES, "module_speech_encoder_new_head_discarded_keys.py"), encoding="utf-8") as handle:
        text = handle.read()  # Buggy: DL509 only
    uri = (tmp_path / "finetune.py").as_uri()
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": text}})
    assert client.diagnostics(uri) == []
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nextend-select = ["load-state-dict-unchecked"]\n')
    client.send("workspace/didChangeWatchedFiles",
                {"changes": [{"uri": (tmp_path / "pyproject.toml").as_uri(), "type": 1}]})
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL509"]


def _open(client, uri, text, version=1):
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version,
                                                          "text": text}})


def test_a_malformed_message_does_not_silence_the_server(client, tmp_path):
    # A header whose length is not a number, then a body the server cannot frame.
    client.process.stdin.write(b"Content-Length: twelve\r\n\r\n{\"jsonrpc\": \"2.0\"}")
    client.process.stdin.flush()
    uri = (tmp_path / "train.py").as_uri()
    _open(client, uri, BUGGY)
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL101"]


def test_a_syntax_error_keeps_the_last_good_diagnostics_beside_it(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    _open(client, uri, BUGGY)
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL101"]
    client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                           "contentChanges": [{"text": BUGGY + "\ndef half_typed(:\n"}]})
    assert sorted(d["code"] for d in client.diagnostics(uri)) == ["DL000", "DL101"]
    client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                           "contentChanges": [{"text": FIXED}]})
    assert client.diagnostics(uri) == []


TYPO = """import torch
import torch.nn as nn


class Adapter(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        for parameter in self.backbone.parameters():
            parameter.require_grad = False
        self.head = nn.Linear(512, 10)

    def forward(self, x):
        return self.head(self.backbone(x))
"""


def test_fix_all_applies_every_safe_fix_as_the_command_line_does(client, tmp_path):
    from tests.invoke import invoke

    uri = (tmp_path / "adapter.py").as_uri()
    _open(client, uri, TYPO)
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL403"]
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0},
                                                "end": {"line": 0, "character": 0}},
        "context": {"diagnostics": [], "only": ["source.fixAll"]}})
    assert [a["kind"] for a in actions] == ["source.fixAll.dllint"]
    fixed = actions[0]["edit"]["changes"][uri][0]["newText"]
    on_stdin = invoke("--fix", "--stdin-filename", "adapter.py", "-", cwd=tmp_path, input=TYPO)
    assert fixed == on_stdin.stdout and "parameter.requires_grad = False" in fixed


NOTEBOOK_CELLS = [
    ("markdown", "# Digits\nA small classifier, trained for a few epochs."),
    ("code", "import torch\nimport torch.nn as nn\n%matplotlib inline\n\nmodel = nn.Sequential(nn.Flatten(), "
             "nn.Linear(784, 10))\noptimizer = torch.optim.SGD(model.parameters(), lr=0.1)"),
    ("code", "for epoch in range(3):\n    for x, y in loader:\n        loss = nn.functional.cross_entropy(model(x), y)\n"
             "        loss.backward()\n        optimizer.step()"),
]


def test_a_notebook_document_is_linted_as_one_program_and_reported_on_its_cells(client, tmp_path):
    notebook_uri = (tmp_path / "digits.ipynb").as_uri()
    cell_uris = [f"vscode-notebook-cell:{tmp_path / 'digits.ipynb'}#cell{n}" for n in range(len(NOTEBOOK_CELLS))]
    client.send("notebookDocument/didOpen", {
        "notebookDocument": {"uri": notebook_uri, "notebookType": "jupyter-notebook", "version": 1,
                             "cells": [{"kind": 2 if kind == "code" else 1, "document": uri}
                                       for (kind, _), uri in zip(NOTEBOOK_CELLS, cell_uris)]},
        "cellTextDocuments": [{"uri": uri, "languageId": "python" if kind == "code" else "markdown", "version": 1,
                               "text": text} for (kind, text), uri in zip(NOTEBOOK_CELLS, cell_uris)]})
    # The optimizer is built in one cell and stepped in the next: one program, reported on the loop's cell.
    diagnostics = client.diagnostics(cell_uris[2])
    assert [(d["code"], d["range"]["start"]["line"]) for d in diagnostics] == [("DL101", 4)]
    fixed = NOTEBOOK_CELLS[2][1].replace("    for x, y in loader:\n", "    for x, y in loader:\n        optimizer.zero_grad()\n")
    client.send("notebookDocument/didChange", {
        "notebookDocument": {"uri": notebook_uri, "version": 2},
        "change": {"cells": {"textContent": [{"document": {"uri": cell_uris[2], "version": 2},
                                              "changes": [{"text": fixed}]}]}}})
    assert client.diagnostics(cell_uris[2]) == []


def test_a_bad_pyproject_is_a_diagnostic_on_that_file_and_the_findings_stay(client, tmp_path):
    uri = (tmp_path / "train.py").as_uri()
    config = tmp_path / "pyproject.toml"
    _open(client, uri, BUGGY)
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL101"]
    config.write_text('[tool.dllint]\nignore = ["DL777"]\n')
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": config.as_uri(), "type": 2}]})
    seen = []
    message = client.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics" and
                              (seen.append(m["params"]["uri"]) or m["params"]["uri"] == config.as_uri()))
    (error,) = message["params"]["diagnostics"]
    assert error["range"]["start"]["line"] == 1 and "DL777" in error["message"] and error["severity"] == 1
    assert uri not in seen  # train.py's findings were not cleared
    config.write_text('[tool.dllint]\nignore = ["DL101"]\n')
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": config.as_uri(), "type": 2}]})
    assert client.diagnostics(config.as_uri()) == []
    assert client.diagnostics(uri) == []


def test_a_change_relints_only_the_open_documents_linked_to_it_through_imports(client, tmp_path):
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    # The unrelated script first: the server lints others in open order.
    uris = _open_project(client, tmp_path, {"unrelated.py": BUGGY, "train.py": TRAIN, "models.py": MODELS})
    client.send("textDocument/didChange", {"textDocument": {"uri": uris["models.py"], "version": 2},
                                           "contentChanges": [{"text": LOGITS_MODELS}]})
    seen, diagnostics = _published_until(client, uris["train.py"])
    assert diagnostics == []  # the model returns logits now
    assert uris["unrelated.py"] not in seen


def test_documents_opened_as_saved_are_each_linted_once(client, tmp_path):
    """An editor restoring its tabs: a buffer equal to its file changes nothing for the others."""
    from tests.test_project_context import MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    texts = {"models.py": MODELS, "train.py": TRAIN, "unrelated.py": BUGGY}
    seen = []
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        _open(client, (tmp_path / name).as_uri(), text)
        seen += _published_until(client, (tmp_path / name).as_uri())[0]
    time.sleep(1)
    seen += [m["params"]["uri"] for m in list(client.messages.queue) if "params" in m]
    assert seen == [(tmp_path / name).as_uri() for name in texts]


def _open_project(client, tmp_path, texts):
    """Write and open the files in order; returns their uris, once each has shown its diagnostics."""
    uris = {name: (tmp_path / name).as_uri() for name in texts}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
        _open(client, uris[name], text)
        client.diagnostics(uris[name])
    return uris


def _published_until(client, uri):
    """The messages up to the first diagnostics published for `uri`, and those diagnostics."""
    published = []
    client.wait_for(lambda m: published.append(m) or (m.get("method") == "textDocument/publishDiagnostics"
                                                      and m["params"]["uri"] == uri))
    return [m["params"]["uri"] for m in published if "params" in m], published[-1]["params"]["diagnostics"]


def test_a_file_changed_on_disk_relints_only_the_open_documents_linked_to_it(client, tmp_path):
    """A pull or a branch switch changes files that are not open: only the training loop that uses the
    changed model is linted again, not every open document."""
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(LOGITS_MODELS)
    # The unrelated script is opened first: the server lints documents in open order.
    uris = _open_project(client, tmp_path, {"unrelated.py": BUGGY, "train.py": TRAIN})
    models = tmp_path / "models.py"
    models.write_text(MODELS)  # forward returns softmax now
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": models.as_uri(), "type": 2}]})
    seen, diagnostics = _published_until(client, uris["train.py"])
    assert [d["code"] for d in diagnostics] == ["DL201"] and uris["unrelated.py"] not in seen
    models.unlink()  # deleted: train.py no longer knows what Net returns
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": models.as_uri(), "type": 3}]})
    seen, diagnostics = _published_until(client, uris["train.py"])
    assert diagnostics == [] and uris["unrelated.py"] not in seen
    # A file that nothing open imports changes nothing shown: no document is linted again.
    (tmp_path / "notes.py").write_text(BUGGY)
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "notes.py").as_uri(),
                                                                 "type": 1}]})
    time.sleep(2)
    assert not [m for m in list(client.messages.queue) if m.get("method") == "textDocument/publishDiagnostics"]


def test_closing_an_unsaved_buffer_shows_the_other_documents_what_is_on_disk(client, tmp_path):
    """Changes to the model discarded (closed without saving): the training loop's findings follow the file."""
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    uris = _open_project(client, tmp_path, {"models.py": LOGITS_MODELS, "train.py": TRAIN})
    client.send("textDocument/didChange", {"textDocument": {"uri": uris["models.py"], "version": 2},
                                           "contentChanges": [{"text": MODELS}]})
    assert [d["code"] for d in _published_until(client, uris["train.py"])[1]] == ["DL201"]
    client.send("textDocument/didClose", {"textDocument": {"uri": uris["models.py"]}})
    assert _published_until(client, uris["train.py"])[1] == []


def test_while_a_model_file_does_not_parse_the_training_loop_keeps_its_findings(client, tmp_path):
    """Typing in models.py passes through text that does not parse: train.py's lint keeps seeing the
    model as it last parsed, instead of losing what its forward returns."""
    from tests.test_project_context import MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    uris = _open_project(client, tmp_path, {"models.py": MODELS, "train.py": TRAIN})
    half_typed = MODELS + "\n    def extra(self, x:\n"
    client.send("textDocument/didChange", {"textDocument": {"uri": uris["models.py"], "version": 2},
                                           "contentChanges": [{"text": half_typed}]})
    assert [d["code"] for d in client.diagnostics(uris["models.py"])] == ["DL000"]
    client.send("textDocument/didChange", {"textDocument": {"uri": uris["train.py"], "version": 2},
                                           "contentChanges": [{"text": TRAIN + "\n# tuned\n"}]})
    assert [(d["code"], d["range"]["start"]["line"]) for d in client.diagnostics(uris["train.py"])] == \
        [("DL201", 13)]


def test_each_workspace_folder_is_its_own_project(tmp_path):
    """Two projects open in one editor window, each with its own models.py: a training loop sees the
    model of its own project (the index is kept per project, not per server)."""
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    folders = {"softmax_project": MODELS, "logits_project": LOGITS_MODELS}
    for folder, models in folders.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pyproject.toml").write_text("")
        (tmp_path / folder / "models.py").write_text(models)
        (tmp_path / folder / "train.py").write_text(TRAIN)
    lsp = Client(tmp_path)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {
            "workspace": {"workspaceFolders": True}}, "workspaceFolders": [
            {"uri": (tmp_path / folder).as_uri(), "name": folder} for folder in folders]})
        lsp.send("initialized", {})
        shown = {}
        for folder in folders:
            uri = (tmp_path / folder / "train.py").as_uri()
            _open(lsp, uri, TRAIN)
            shown[folder] = [d["code"] for d in lsp.diagnostics(uri)]
        assert shown == {"softmax_project": ["DL201"], "logits_project": []}
    finally:
        lsp.close()


def test_the_server_asks_a_client_that_allows_it_to_watch_python_files_and_settings(tmp_path):
    """File events reach the server only for the globs someone registered: the server registers its
    own (Neovim and other clients with dynamic registration send nothing otherwise)."""
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(LOGITS_MODELS)
    lsp = Client(tmp_path)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {
            "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}})
        lsp.send("initialized", {})
        request = lsp.wait_for(lambda m: m.get("method") == "client/registerCapability")
        (registration,) = request["params"]["registrations"]
        assert registration["method"] == "workspace/didChangeWatchedFiles"
        watchers = {(w["globPattern"], w.get("kind")) for w in registration["registerOptions"]["watchers"]}
        # Every kind of change of the files that matter, and creations and deletions of anything (a
        # folder created or deleted whole is one event for the folder).
        assert watchers == {("**/*.py", None), ("**/*.ipynb", None), ("**/pyproject.toml", None), ("**/*", 1 | 4)}
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": None}).encode()
        lsp.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        lsp.process.stdin.flush()
        uri = (tmp_path / "train.py").as_uri()
        (tmp_path / "train.py").write_text(TRAIN)
        _open(lsp, uri, TRAIN)
        assert lsp.diagnostics(uri) == []
        (tmp_path / "models.py").write_text(MODELS)
        lsp.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "models.py").as_uri(),
                                                                  "type": 2}]})
        assert [d["code"] for d in lsp.diagnostics(uri)] == ["DL201"]
    finally:
        lsp.close()


def test_saving_the_text_already_linted_lints_nothing_again(client, tmp_path):
    """Editors save right after the edit the server just linted: nothing changed for any document."""
    from tests.test_project_context import LOGITS_MODELS, MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    uris = _open_project(client, tmp_path, {"models.py": MODELS, "train.py": TRAIN})
    client.send("textDocument/didChange", {"textDocument": {"uri": uris["models.py"], "version": 2},
                                           "contentChanges": [{"text": LOGITS_MODELS}]})
    assert _published_until(client, uris["train.py"])[1] == []
    (tmp_path / "models.py").write_text(LOGITS_MODELS)
    client.send("textDocument/didSave", {"textDocument": {"uri": uris["models.py"]}})
    time.sleep(1.5)
    assert not [m for m in list(client.messages.queue) if m.get("method") == "textDocument/publishDiagnostics"]
    # Closing it now discards nothing: the training loop is not linted again either.
    client.send("textDocument/didClose", {"textDocument": {"uri": uris["models.py"]}})
    assert client.diagnostics(uris["models.py"]) == []
    time.sleep(1.5)
    assert not [m for m in list(client.messages.queue) if m.get("method") == "textDocument/publishDiagnostics"]


def test_a_folder_deleted_or_created_whole_relints_the_open_documents_linked_to_its_files(client, tmp_path):
    """`rm -r nets` (or a branch switch that removes the folder) is reported as one event for the
    folder, not one per file: the training loop that used the model in it loses the finding, and
    gets it back when the folder comes back (one event again), while an unrelated script is left alone."""
    import shutil

    from tests.test_project_context import MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    nets = tmp_path / "nets"
    nets.mkdir()
    (nets / "__init__.py").write_text("")
    (nets / "models.py").write_text(MODELS)
    uris = _open_project(client, tmp_path, {"unrelated.py": BUGGY})
    uris["train.py"] = (tmp_path / "train.py").as_uri()
    train = TRAIN.replace("from models import", "from nets.models import")
    (tmp_path / "train.py").write_text(train)
    _open(client, uris["train.py"], train)
    assert [d["code"] for d in client.diagnostics(uris["train.py"])] == ["DL201"]
    shutil.rmtree(nets)
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": nets.as_uri(), "type": 3}]})
    seen, diagnostics = _published_until(client, uris["train.py"])
    assert diagnostics == [] and uris["unrelated.py"] not in seen
    nets.mkdir()
    (nets / "__init__.py").write_text("")
    (nets / "models.py").write_text(MODELS)
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": nets.as_uri(), "type": 1}]})
    seen, diagnostics = _published_until(client, uris["train.py"])
    assert [d["code"] for d in diagnostics] == ["DL201"] and uris["unrelated.py"] not in seen
    # Any other file created or deleted (the watcher reports every path) changes nothing shown.
    (tmp_path / "notes.txt").write_text("lr 1e-3")
    client.send("workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "notes.txt").as_uri(),
                                                                 "type": 1}]})
    time.sleep(1.5)
    assert not [m for m in list(client.messages.queue) if m.get("method") == "textDocument/publishDiagnostics"]
