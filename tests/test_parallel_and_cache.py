"""Output does not depend on the number of jobs or on the cache; the cache notices every change."""

import glob
import json
import os
import shutil
import subprocess
import sys

from tests.conftest import FIXTURES, run_dllint

MODELS = """\
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return {forward}
"""

TRAIN = """\
import torch
import torch.nn as nn

from models import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
"""


def _lint(cwd, *args):
    result = run_dllint("--format", "json", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_jobs_and_cache_give_identical_output(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    serial = _lint(tmp_path, "--jobs", "1", "--no-cache", "fixtures")
    assert len(serial) > 20
    assert _lint(tmp_path, "--jobs", "2", "--no-cache", "fixtures") == serial
    assert _lint(tmp_path, "--jobs", "3", "fixtures") == serial  # fills the cache
    assert os.path.isfile(tmp_path / ".dllint_cache" / ".gitignore")
    assert _lint(tmp_path, "--jobs", "2", "fixtures") == serial  # served from the cache


def test_editing_the_model_file_rechecks_the_training_script(tmp_path):
    (tmp_path / "models.py").write_text(MODELS.format(forward="self.fc(x)"))
    (tmp_path / "train.py").write_text(TRAIN)
    assert _lint(tmp_path, ".") == []
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    findings = _lint(tmp_path, ".")
    assert [(f["path"], f["code"]) for f in findings] == [("train.py", "DL201")]
    assert "models.py:11" in findings[0]["message"]


def test_corrupt_or_foreign_cache_entries_are_ignored(tmp_path):
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    (tmp_path / "train.py").write_text(TRAIN)
    expected = _lint(tmp_path, "--no-cache", ".")
    assert _lint(tmp_path, ".") == expected
    entries = glob.glob(str(tmp_path / ".dllint_cache" / "*" / "*.json"))
    assert entries
    for index, entry in enumerate(entries):
        with open(entry, "w") as handle:
            handle.write("{not json" if index % 2 == 0 else json.dumps({"version": "0.0.0-other", "findings": []}))
    assert _lint(tmp_path, ".") == expected


def test_concurrent_runs_share_the_cache_safely(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    expected = _lint(tmp_path, "--no-cache", "fixtures")
    command = [sys.executable, "-m", "dllint", "--format", "json", "fixtures"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(json.loads(output) == expected for output in outputs)
    assert _lint(tmp_path, "fixtures") == expected


def test_clean_removes_the_cache(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    _lint(tmp_path, ".")
    assert os.path.isdir(tmp_path / ".dllint_cache")
    result = run_dllint("clean", cwd=tmp_path)
    assert result.returncode == 0 and "Removed" in result.stderr
    assert not os.path.exists(tmp_path / ".dllint_cache")
