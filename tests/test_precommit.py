"""The pre-commit hooks, run by real pre-commit, installed from this checkout as a hook repository."""

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


def _checkout_as_a_commit(destination, env):
    """A clone of this repository whose HEAD also holds the uncommitted changes of its tracked files, as
    `pre-commit try-repo` makes one: the hook is installed from the code under test."""
    subprocess.run(["git", "clone", "-q", ROOT, str(destination)], check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    subprocess.run(["git", "checkout", "-q", head.strip()], cwd=destination, check=True, env=env)
    changes = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, capture_output=True, check=True).stdout
    if changes:
        subprocess.run(["git", "apply", "--index"], cwd=destination, input=changes, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", "uncommitted changes"], cwd=destination, check=True, env=env)
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=destination, capture_output=True, text=True,
                              check=True).stdout
    return destination, revision.strip()


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
    hook_repository, revision = _checkout_as_a_commit(tmp_path / "hook-repository", env)
    config = tmp_path / "hooks.yaml"
    config.write_text(f"repos:\n-   repo: {hook_repository}\n    rev: {revision}\n    hooks:\n    -   id: dllint\n")

    def run_hook(*names):
        # One hook environment (PRE_COMMIT_HOME) serves every run: pre-commit installs it on the first.
        return subprocess.run([_pre_commit(), "run", "--config", str(config), "dllint", "--files", *names],
                              cwd=project, capture_output=True, text=True, env=env, timeout=600)

    buggy = run_hook("buggy.py")
    if buggy.returncode != 0 and "DL101" not in buggy.stdout and "error" in (buggy.stdout + buggy.stderr).lower() \
            and ("network" in buggy.stdout.lower() or "could not" in buggy.stdout.lower()):
        pytest.skip("pre-commit could not install the hook environment (no network?)")
    assert buggy.returncode == 1, buggy.stdout + buggy.stderr
    assert "buggy.py:8:9: DL101 [missing-zero-grad]" in buggy.stdout
    in_notebook = run_hook("buggy.ipynb")
    assert in_notebook.returncode == 1, in_notebook.stdout + in_notebook.stderr
    assert "buggy.ipynb:cell 1:8:9: DL101 [missing-zero-grad]" in in_notebook.stdout
    clean = run_hook("clean.py", "finetune.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout
    excluded = run_hook("generated/exported_train.py")
    assert excluded.returncode == 0 and "DL101" not in excluded.stdout, excluded.stdout + excluded.stderr
    scripts = run_hook(*(f"train_{number:02d}.py" for number in range(21)))
    reported = sorted(line.split(":")[0] for line in scripts.stdout.splitlines() if ": DL201 " in line)
    assert reported == [f"train_{number:02d}.py" for number in range(21)], scripts.stdout + scripts.stderr
