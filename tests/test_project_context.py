"""A file's findings do not depend on which entry point lints it: a directory run, the file alone,
stdin under its name, an editor buffer (with other unsaved buffers) and the language server all
lint it in the company of its whole project."""

import json
import os

import pytest

from dllint import registry
from dllint.runner import lint_paths
from dllint.pipeline import lint_buffer
from dllint.index.project_context import project_root
from tests.conftest import FIXTURES
from tests.expectations import expected_findings, linted_files, python_files
from tests.invoke import invoke

MODELS = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 256), nn.ReLU())
        self.head = nn.Linear(256, classes)

    def forward(self, x):
        return F.softmax(self.head(self.body(x)), dim=1)
'''
LOGITS_MODELS = MODELS.replace("return F.softmax(self.head(self.body(x)), dim=1)", "return self.head(self.body(x))")
TRAIN = '''\
import torch
import torch.nn as nn

from models import Net


def main(loader, epochs=5):
    model = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
'''
ALL_CODES = [r.code for r in registry.all_rules()]


def _project(tmp_path, models=MODELS):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'digits'\n")
    (tmp_path / "models.py").write_text(models)
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def _json_codes(result):
    return [(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)]


def test_one_named_file_sees_the_model_class_of_another_file(tmp_path):
    _project(tmp_path)
    expected = [("train.py", 14, "DL201")]
    assert _json_codes(invoke("--format", "json", "--no-cache", ".", cwd=tmp_path)) == expected
    assert _json_codes(invoke("--format", "json", "--no-cache", "train.py", cwd=tmp_path)) == expected
    # pre-commit names only the file it changed: the model file alone reports nothing of its own.
    assert _json_codes(invoke("--format", "json", "--no-cache", "models.py", cwd=tmp_path)) == []
    stdin = invoke("--format", "json", "--stdin-filename", "train.py", "-", cwd=tmp_path, input=TRAIN)
    assert _json_codes(stdin) == expected
    buffer = lint_buffer(str(tmp_path / "train.py"), TRAIN)
    assert [(f.line, f.code) for f in buffer] == [(14, "DL201")]


def test_an_unsaved_buffer_overrides_its_file_on_disk(tmp_path):
    _project(tmp_path, models=LOGITS_MODELS)
    train = str(tmp_path / "train.py")
    assert lint_buffer(train, TRAIN) == []
    with_softmax = lint_buffer(train, TRAIN, buffers={str(tmp_path / "models.py"): MODELS})
    assert [(f.line, f.code) for f in with_softmax] == [(14, "DL201")]


def test_the_cache_does_not_mix_up_partial_and_whole_runs(tmp_path):
    _project(tmp_path)
    first = _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path))
    whole = _json_codes(invoke("--format", "json", ".", cwd=tmp_path))
    again = _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path))
    assert first == again == [("train.py", 14, "DL201")] and whole == first
    (tmp_path / "models.py").write_text(LOGITS_MODELS)  # editing the model file re-checks train.py
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == []


def test_the_project_root_is_the_config_folder_else_a_marked_folder_else_above_the_packages(tmp_path):
    package = tmp_path / "src" / "vision" / "models"
    package.mkdir(parents=True)
    (tmp_path / "src" / "vision" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    assert project_root([str(package)]) == str(tmp_path / "src")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = vision\n")
    assert project_root([str(package)]) == str(tmp_path)
    assert project_root([str(package)], str(tmp_path / "src" / "pyproject.toml")) == str(tmp_path / "src")


PACKAGES = sorted(os.path.join(FIXTURES, n) for n in os.listdir(FIXTURES)
                  if n.startswith("pkg_") and os.path.isdir(os.path.join(FIXTURES, n)))


def _keys(findings):
    return sorted({(os.path.abspath(f.path), _line(f.path, f.line), f.column, f.code, f.message) for f in findings})


def _line(path, line):
    """A finding's line; in a notebook (cell, line within it), as JSON gives it."""
    from dllint.notebook import read_notebook

    if not path.endswith(".ipynb"):
        return line
    with open(path, encoding="utf-8") as handle:
        return read_notebook(handle.read()).cell_position(line)


def test_most_fixture_packages_have_findings_to_compare():
    annotated = [p for p in PACKAGES if any(expected_findings(f) for f in python_files(p))]
    assert len(annotated) >= len(PACKAGES) // 2


# The directories of more than one file: the packages, and the notebooks side by side.
MULTI_FILE_UNITS = [*PACKAGES, os.path.join(FIXTURES, "notebooks")]


@pytest.mark.parametrize("package", MULTI_FILE_UNITS, ids=os.path.basename)
def test_every_entry_point_gives_a_file_the_findings_of_the_whole_run(package):
    whole = _keys(lint_paths([package], ALL_CODES).findings)
    per_file, buffers, stdin = [], [], []
    for path in linted_files(package):
        per_file += _keys(lint_paths([path], ALL_CODES).findings)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        buffers += _keys(lint_buffer(path, text))
        result = invoke("--format", "json", "--isolated", "--stdin-filename", path, "-", cwd=package, input=text)
        stdin += sorted((os.path.abspath(os.path.join(package, f["path"])),
                         (f["cell"], f["line"]) if "cell" in f else f["line"], f["column"], f["code"],
                         f["message"]) for f in json.loads(result.stdout))
    assert sorted(per_file) == whole
    assert sorted(buffers) == whole
    assert sorted(stdin) == whole


def test_the_language_server_lints_a_buffer_with_the_other_open_buffers(tmp_path):
    pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")
    from tests.test_lsp import Client

    _project(tmp_path, models=LOGITS_MODELS)  # on disk the model returns logits
    lsp = Client(tmp_path)
    try:
        lsp.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
        lsp.send("initialized", {})
        models_uri, train_uri = (tmp_path / "models.py").as_uri(), (tmp_path / "train.py").as_uri()
        lsp.send("textDocument/didOpen", {"textDocument": {"uri": models_uri, "languageId": "python", "version": 1,
                                                           "text": MODELS}})  # unsaved: softmax
        assert lsp.diagnostics(models_uri) == []
        lsp.send("textDocument/didOpen", {"textDocument": {"uri": train_uri, "languageId": "python", "version": 1,
                                                           "text": TRAIN}})
        assert [(d["code"], d["range"]["start"]["line"]) for d in lsp.diagnostics(train_uri)] == [("DL201", 13)]
        # Back to logits in the model buffer: the training loop's diagnostics follow.
        lsp.send("textDocument/didChange", {"textDocument": {"uri": models_uri, "version": 2},
                                            "contentChanges": [{"text": LOGITS_MODELS}]})
        assert lsp.diagnostics(train_uri) == []
    finally:
        lsp.close()
