"""The pre-commit hooks, run by real pre-commit against this repository (`pre-commit try-repo`)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT

BUGGY = """import torch


def train(model, loader, optimizer):
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
"""
SOFTMAX_MODEL = """import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return F.softmax(self.fc(x.flatten(1)), dim=1)
"""
TRAIN_WITH_MODEL = """import torch

from models import Classifier


def train(loader):
    model = Classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = torch.nn.CrossEntropyLoss()
    for x, y in loader:
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()
"""
CLEAN = BUGGY.replace("    for x, y in loader:\n", "    for x, y in loader:\n        optimizer.zero_grad()\n")


def _pre_commit():
    found = shutil.which("pre-commit") or os.path.join(os.path.dirname(sys.executable), "pre-commit")
    return found if os.path.exists(found) else None


@pytest.mark.skipif(_pre_commit() is None, reason="pre-commit is not installed (pip install 'dllint[dev]')")
def test_hook_fails_on_a_buggy_file_and_passes_on_a_clean_one(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "buggy.py").write_text(BUGGY)
    (project / "clean.py").write_text(CLEAN)
    # Only an opt-in rule (DL509) has something to say about this one: the hooks run the default selection.
    shutil.copy(os.path.join(FIXTURES, "module_speech_encoder_new_head_discarded_keys.py"), project / "finetune.py")
    # pre-commit names every staged file; the hook still honours the configured excludes.
    (project / "generated").mkdir()
    (project / "generated" / "exported_train.py").write_text(BUGGY)
    (project / "pyproject.toml").write_text('[tool.dllint]\nextend-exclude = ["generated"]\n')
    # The hooks take notebooks too (types_or: [python, jupyter]): the same loop in a code cell.
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                           "source": BUGGY.splitlines(True)}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (project / "buggy.ipynb").write_text(json.dumps(notebook, indent=1) + "\n")
    # A model in one file, 21 training scripts that feed its softmax output to CrossEntropyLoss: the bug
    # shows only with the model file's facts, which pre-commit does not name, and pre-commit splits the
    # 21 scripts between processes.
    (project / "models.py").write_text(SOFTMAX_MODEL)
    for number in range(21):
        (project / f"train_{number:02d}.py").write_text(TRAIN_WITH_MODEL)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q"], cwd=project, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=project, check=True, env=env)

    def try_repo(*names):
        return subprocess.run([_pre_commit(), "try-repo", ROOT, "dllint", "--files", *names], cwd=project,
                              capture_output=True, text=True, env=env, timeout=600)

    buggy = try_repo("buggy.py")
    if buggy.returncode != 0 and "DL101" not in buggy.stdout and "error" in (buggy.stdout + buggy.stderr).lower() \
            and ("network" in buggy.stdout.lower() or "could not" in buggy.stdout.lower()):
        pytest.skip("pre-commit could not install the hook environment (no network?)")
    assert buggy.returncode == 1, buggy.stdout + buggy.stderr
    assert "buggy.py:8:9: DL101 [missing-zero-grad]" in buggy.stdout
    in_notebook = try_repo("buggy.ipynb")
    assert in_notebook.returncode == 1, in_notebook.stdout + in_notebook.stderr
    assert "buggy.ipynb:cell 1:8:9: DL101 [missing-zero-grad]" in in_notebook.stdout
    clean = try_repo("clean.py", "finetune.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout
    excluded = try_repo("generated/exported_train.py")
    assert excluded.returncode == 0 and "DL101" not in excluded.stdout, excluded.stdout + excluded.stderr
    scripts = try_repo(*(f"train_{number:02d}.py" for number in range(21)))
    reported = sorted(line.split(":")[0] for line in scripts.stdout.splitlines() if ": DL201 " in line)
    assert reported == [f"train_{number:02d}.py" for number in range(21)], scripts.stdout + scripts.stderr
