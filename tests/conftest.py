import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
RULES = os.path.join(ROOT, "rules")


# DL201 on line 8 (softmax into cross-entropy), DL101 on line 10 (no zero_grad).
BUGGY_SCRIPT = """\
import torch
import torch.nn as nn

model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    loss = criterion(torch.softmax(model(x), dim=1), y)
    loss.backward()
    optimizer.step()
"""


def run_dllint(*args, cwd=None, input=None, env=None):
    """Run the real command line in a child process and return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dllint", *args], cwd=cwd or ROOT, input=input,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def dllint():
    return run_dllint
