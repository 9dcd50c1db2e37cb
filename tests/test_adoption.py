"""Adopting dllint on an existing code base (--add-noqa, DL998's fix, warn-unused-suppressions) and
review bots (--diff-base, tested on a real git repository)."""

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.invoke import invoke
from tests.training_script import TRAIN_SCRIPT, TRAIN_SCRIPT_FINDINGS

ADDED = re.compile(r"  # dllint: ignore\[[A-Z0-9, ]+\]")


def _reported(result):
    return [(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)]


def test_add_noqa_silences_every_finding_and_changes_no_other_byte(tmp_path):
    # A comment already on a flagged line: ours is merged into, another tool's is kept.
    script = TRAIN_SCRIPT.replace("features = F.dropout(features, 0.25)\n",
                                  "features = F.dropout(features, 0.25)  # dllint: ignore[DL101]\n") \
        .replace("correct += (model.forward(images).argmax(1) == labels).sum().item()\n",
                 "correct += (model.forward(images).argmax(1) == labels).sum().item()  # type: ignore\n")
    crlf = script.replace("\n", "\r\n").encode()
    (tmp_path / "train.py").write_text(script)
    (tmp_path / "windows_train.py").write_bytes(crlf)
    result = invoke("--add-noqa", "--no-cache", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == "Added 8 suppression comments to 2 files."
    fixed = (tmp_path / "train.py").read_text()
    lines = fixed.splitlines()
    assert lines[16].endswith("F.dropout(features, 0.25)  # dllint: ignore[DL101, DL303]")
    assert lines[26].endswith("loss = criterion(F.softmax(logits, dim=1),  # dllint: ignore[DL201]")
    assert lines[29].endswith("optimizer.step()  # dllint: ignore[DL101]")
    assert lines[37].endswith(".sum().item()  # type: ignore  # dllint: ignore[DL505]")

    def without_additions(text):
        # The merged comment as it was, then every added comment gone: what is left is the original.
        return ADDED.sub("", text.replace("# dllint: ignore[DL101, DL303]", "# dllint: ignore[DL101]")
                         .replace("  # dllint: ignore[DL101]", "MERGED", 1)).replace("MERGED", "  # dllint: ignore[DL101]")

    assert without_additions(fixed) == script
    assert without_additions((tmp_path / "windows_train.py").read_bytes().decode()) == crlf.decode()
    after = invoke("--format", "json", "--no-cache", ".", cwd=tmp_path)
    assert after.returncode == 0 and _reported(after) == []
    again = invoke("--add-noqa", "--no-cache", ".", cwd=tmp_path)
    assert again.stderr.splitlines()[0] == "Added 0 suppression comments to 0 files."
    assert (tmp_path / "train.py").read_text() == fixed


def test_add_noqa_puts_the_comment_where_python_allows_one(tmp_path):
    # Findings on lines that end inside a string or in a backslash continuation: the comment goes on
    # the next line that can hold one, and covers them (as in ruff).
    source = ('import torch\n\n\ndef predict(model, batch):\n'
              '    first = model.module.forward(batch), """a\nlong note"""\n'
              '    second = model.module.forward(batch) + \\\n        model.module.forward(batch)\n'
              '    return first, second\n')
    (tmp_path / "infer.py").write_text(source)
    before = _reported(invoke("--format", "json", "--no-cache", "infer.py", cwd=tmp_path))
    assert [line for _, line, _ in before] == [5, 7, 8]
    result = invoke("--add-noqa", "--no-cache", "infer.py", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.startswith("Added 2 suppression comments to 1 file.")
    text = (tmp_path / "infer.py").read_text()
    assert text == source.replace('note"""\n', 'note"""  # dllint: ignore[DL505]\n') \
        .replace("        model.module.forward(batch)\n", "        model.module.forward(batch)  # dllint: ignore[DL505]\n")
    assert _reported(invoke("--format", "json", "--no-cache", "--warn-unused-suppressions", "infer.py",
                            cwd=tmp_path)) == []


def test_add_noqa_refuses_fix_and_stdin(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    assert invoke("--add-noqa", "--fix", "train.py", cwd=tmp_path).returncode == 2
    assert invoke("--add-noqa", "-", cwd=tmp_path, input=TRAIN_SCRIPT).returncode == 2


STALE = TRAIN_SCRIPT \
    .replace("        optimizer.step()\n", "        optimizer.step()  # dllint: ignore[DL101, DL505]\n") \
    .replace("import argparse\n", "import argparse  # noqa: DL303, E402\n") \
    .replace("    model.eval()\n", "    model.eval()  # dllint: ignore[DL301] kept for the old loader\n") \
    .replace('if __name__ == "__main__":\n', '# dllint: ignore-file[DL601]\nif __name__ == "__main__":\n')


def test_unused_suppressions_are_fixed_away(tmp_path):
    (tmp_path / "train.py").write_text(STALE)
    report = invoke("--warn-unused-suppressions", "--format", "json", "--no-cache", "train.py", cwd=tmp_path)
    stale = [f for f in json.loads(report.stdout) if f["code"] == "DL998"]
    assert len(stale) == 4 and all(f["fix"]["applicability"] == "safe" for f in stale)
    # flake8's E402 stays in the noqa, and the message says so.
    assert [f["message"] for f in stale if f["line"] == 2] == [
        "DL303 in `# noqa: DL303, E402` silences nothing: no DL303 finding on this line; "
        "remove DL303 from the comment."]
    diff = invoke("--warn-unused-suppressions", "--diff", "--no-cache", "train.py", cwd=tmp_path)
    assert diff.returncode == 1 and "+import argparse  # noqa: E402\n" in diff.stdout
    result = invoke("--warn-unused-suppressions", "--fix", "--no-cache", "train.py", cwd=tmp_path)
    assert "Fixed 6 problems." in result.stderr  # the four comments, and DL303's and DL505's own fixes
    fixed = (tmp_path / "train.py").read_text()
    expected = TRAIN_SCRIPT \
        .replace("        optimizer.step()\n", "        optimizer.step()  # dllint: ignore[DL101]\n") \
        .replace("import argparse\n", "import argparse  # noqa: E402\n") \
        .replace("    model.eval()\n", "    model.eval()  # kept for the old loader\n") \
        .replace("F.dropout(features, 0.25)", "F.dropout(features, 0.25, training=self.training)") \
        .replace("model.forward(images)", "model(images)")
    assert fixed == expected


def test_warn_unused_suppressions_is_a_setting(tmp_path):
    (tmp_path / "train.py").write_text(STALE)
    (tmp_path / "pyproject.toml").write_text("[tool.dllint]\nwarn-unused-suppressions = true\n")
    codes = [code for _, _, code in _reported(invoke("--format", "json", "--no-cache", "train.py", cwd=tmp_path))]
    assert codes.count("DL998") == 4
    off = invoke("--no-warn-unused-suppressions", "--format", "json", "--no-cache", "train.py", cwd=tmp_path)
    assert "DL998" not in [code for _, _, code in _reported(off)]
    assert '"warn-unused-suppressions": true' in invoke("config", "--format", "json", cwd=tmp_path).stdout
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nwarn-unused-suppressions = "yes"\n')
    bad = invoke("train.py", cwd=tmp_path)
    assert bad.returncode == 2 and "warn-unused-suppressions: expected a boolean" in bad.stderr


def _git(repository, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *args], cwd=repository, check=True, capture_output=True, env=env)


# Added in the change under review: a second evaluation that calls the wrapped module's forward
# directly, and the softmax line rewritten (now on one line).
CHANGED = TRAIN_SCRIPT.replace(
    "        loss = criterion(F.softmax(logits, dim=1),\n                         labels)\n",
    "        loss = criterion(F.softmax(logits, dim=-1), labels)\n") + '''

def evaluate_top5(model, loader):
    model.eval()
    with torch.no_grad():
        return [model.module.forward(images).topk(5) for images, _ in loader]
'''


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_base_reports_only_findings_on_changed_lines(tmp_path):
    repository = tmp_path / "repo"
    (repository / "src").mkdir(parents=True)
    (repository / "src" / "train.py").write_text(TRAIN_SCRIPT)
    (repository / "src" / "untouched.py").write_text(TRAIN_SCRIPT)
    _git(repository, "init", "-q")
    _git(repository, "add", ".")
    _git(repository, "commit", "-q", "-m", "base")
    (repository / "src" / "train.py").write_text(CHANGED)
    (repository / "src" / "new_script.py").write_text(TRAIN_SCRIPT)  # untracked: every line is new

    every = _reported(invoke("--format", "json", "--no-cache", "src", cwd=repository))
    assert len(every) == 13
    changed = _reported(invoke("--diff-base", "HEAD", "--format", "json", "--no-cache", "src", cwd=repository))
    new_script = [(os.path.join("src", "new_script.py"), line, code) for line, code in TRAIN_SCRIPT_FINDINGS]
    top5_line = CHANGED.splitlines().index("        return [model.module.forward(images).topk(5) for images, _ in loader]") + 1
    assert changed == [*new_script, (os.path.join("src", "train.py"), 27, "DL201"),
                       (os.path.join("src", "train.py"), top5_line, "DL505")]
    # Every format reports the same findings.
    text = invoke("--diff-base", "HEAD", "--no-cache", "src", cwd=repository)
    assert [tuple(line.split(":")[:2]) for line in text.stdout.splitlines()] == \
        [(path, str(line)) for path, line, _ in changed]
    assert "Found 6 problems in 2 files" in text.stderr
    github = invoke("--diff-base", "HEAD", "--format", "github", "--no-cache", "src", cwd=repository)
    assert [re.search(r"file=([^,]+),line=(\d+)", line).groups() for line in github.stdout.splitlines()] == \
        [(path.replace(os.sep, "/"), str(line)) for path, line, _ in changed]
    sarif = json.loads(invoke("--diff-base", "HEAD", "--format", "sarif", "--no-cache", "src",
                              cwd=repository).stdout)
    assert len(sarif["runs"][0]["results"]) == 6
    junit = invoke("--diff-base", "HEAD", "--format", "junit", "--no-cache", "src", cwd=repository).stdout
    assert junit.count("<failure") == 6
    statistics = json.loads(invoke("--diff-base", "HEAD", "--statistics", "--format", "json", "--no-cache", "src",
                                   cwd=repository).stdout)
    assert sum(entry["count"] for entry in statistics) == 6

    # Once committed, nothing is new.
    _git(repository, "add", ".")
    _git(repository, "commit", "-q", "-m", "change")
    clean = invoke("--diff-base", "HEAD", "--no-cache", "src", cwd=repository)
    assert clean.returncode == 0 and clean.stdout == ""
    # A renamed file with one new line reports that line only.
    _git(repository, "mv", "src/untouched.py", "src/renamed.py")
    (repository / "src" / "renamed.py").write_text(TRAIN_SCRIPT.replace("    model.train()\n",
                                                                        "    model.train()\n    model.forward(None)\n"))
    moved = _reported(invoke("--diff-base", "HEAD", "--format", "json", "--no-cache", "src", cwd=repository))
    assert moved == [(os.path.join("src", "renamed.py"), 24, "DL505")]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_base_errors_are_one_line(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    outside = invoke("--diff-base", "HEAD", "train.py", cwd=tmp_path)
    assert outside.returncode == 2 and outside.stderr.startswith("dllint: error: --diff-base")
    assert len(outside.stderr.strip().splitlines()) == 1
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "base")
    unknown = invoke("--diff-base", "no-such-branch", "train.py", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "dllint: error: --diff-base: unknown git revision: no-such-branch"


# A notebook as Jupyter saves it: one JSON line per source line, so git's hunks name source lines.
NOTEBOOK_CELLS = [
    ("markdown", "# MNIST classifier\nTrained over the cells below.\n"),
    ("code", "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"),
    ("code", "class Classifier(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
             "        self.fc = nn.Linear(784, 10)\n\n    def forward(self, x):\n"
             "        return self.fc(x.flatten(1))\n"),
    ("code", "model = Classifier()\noptimizer = torch.optim.SGD(model.parameters(), lr=0.01)\n"
             "criterion = nn.CrossEntropyLoss()\n"
             "loader = torch.utils.data.DataLoader(torch.load('mnist.pt'), batch_size=32, shuffle=True)\n"),
    ("code", "for epoch in range(5):\n    for images, labels in loader:\n"
             "        loss = criterion(model(images), labels)\n        loss.backward()\n        optimizer.step()\n"),
]
EVALUATION_CELL = ("code", "model.eval()\nwith torch.no_grad():\n    for images, labels in loader:\n"
                           "        probabilities = F.softmax(model(images), dim=1)\n"
                           "        print(criterion(probabilities, labels).item())\n")


def _notebook_json(cells):
    document = {"cells": [{"cell_type": kind, "metadata": {}, "source": text.splitlines(True),
                           **({"execution_count": None, "outputs": []} if kind == "code" else {})}
                          for kind, text in cells],
                "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
                "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1) + "\n"


def _shown(result):
    """(position, code) of each text finding: `nb.ipynb:cell 3:12:5: DL101 [name] message`."""
    return [(line.split(": ")[0], line.split(": ")[1].split()[0]) for line in result.stdout.splitlines()]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_base_on_a_notebook_reports_changed_cell_lines_by_cell(tmp_path):
    (tmp_path / "mnist.ipynb").write_text(_notebook_json(NOTEBOOK_CELLS))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "base")
    before = invoke("--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert _shown(before) == [("mnist.ipynb:cell 5:5:9", "DL101")]
    # The change under review: the loop's header line is edited (not the line DL101 reports), and an
    # evaluation cell with softmax into cross-entropy (DL201) is added.
    loop = NOTEBOOK_CELLS[4][1].replace("range(5)", "range(10)")
    (tmp_path / "mnist.ipynb").write_text(_notebook_json([*NOTEBOOK_CELLS[:4], ("code", loop), EVALUATION_CELL]))
    every = invoke("--no-cache", "--format", "json", "mnist.ipynb", cwd=tmp_path)
    assert sorted((f["cell"], f["code"]) for f in json.loads(every.stdout)) == [(5, "DL101"), (6, "DL201")]
    changed = invoke("--diff-base", "HEAD", "--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert changed.returncode == 1
    assert _shown(changed) == [("mnist.ipynb:cell 6:5:25", "DL201")]
    as_json = json.loads(invoke("--diff-base", "HEAD", "--format", "json", "--no-cache", "mnist.ipynb",
                                cwd=tmp_path).stdout)
    assert [(f["cell"], f["line"], f["code"]) for f in as_json] == [(6, 5, "DL201")]
    # An edit of the line DL101 reports brings it back; committed, nothing is new.
    edited = loop.replace("        optimizer.step()\n", "        optimizer.step()  # one step per batch\n")
    (tmp_path / "mnist.ipynb").write_text(_notebook_json([*NOTEBOOK_CELLS[:4], ("code", edited), EVALUATION_CELL]))
    both = invoke("--diff-base", "HEAD", "--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert _shown(both) == [("mnist.ipynb:cell 5:5:9", "DL101"), ("mnist.ipynb:cell 6:5:25", "DL201")]
    _git(tmp_path, "commit", "-q", "-am", "evaluation")
    clean = invoke("--diff-base", "HEAD", "--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout == ""


def test_add_noqa_writes_into_the_cells_of_a_notebook(tmp_path):
    cells = [
        "%matplotlib inline\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n",
        "class Classifier(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(784, 10)\n\n    def forward(self, x):\n"
        "        return self.fc(F.dropout(x.flatten(1), 0.2))\n",
        "model = Classifier()\noptimizer = torch.optim.Adam(model.parameters())\n"
        "loader = torch.utils.data.DataLoader(torch.load('mnist.pt'), batch_size=32, shuffle=True)",
        "for images, labels in loader:\n    loss = F.cross_entropy(model(images), labels)\n"
        "    loss.backward()\n    optimizer.step()  # one step per batch\n",
        "!nvidia-smi\nmodel.register_forward_hook(lambda module, inputs, output: print(output.shape))\n"
        "print(model.forward(torch.zeros(1, 784)))",
    ]
    document = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                           "source": text.splitlines(True)} for text in cells],
                "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4,
                "nbformat_minor": 5}
    raw = json.dumps(document, indent=1) + "\n"
    (tmp_path / "mnist.ipynb").write_text(raw)
    before = invoke("--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert [line.split(": ")[1].split()[0] for line in before.stdout.splitlines()] == ["DL303", "DL101", "DL505"]
    result = invoke("--add-noqa", "--no-cache", "mnist.ipynb", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.startswith("Added 3 suppression comments to 1 file.")
    written = (tmp_path / "mnist.ipynb").read_text()
    expected = raw.replace('0.2))\\n"', '0.2))  # dllint: ignore[DL303]\\n"') \
        .replace("# one step per batch\\n", "# one step per batch  # dllint: ignore[DL101]\\n") \
        .replace('784)))"', '784)))  # dllint: ignore[DL505]"')
    assert written == expected
    assert invoke("--no-cache", "--warn-unused-suppressions", "mnist.ipynb", cwd=tmp_path).stdout == ""
