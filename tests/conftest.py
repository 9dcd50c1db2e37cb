import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
RULES = os.path.join(ROOT, "rules")


def run_dllint(*args, cwd=None, input=None, env=None):
    """Run the real command line in a child process and return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dllint", *args], cwd=cwd or ROOT, input=input,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def dllint():
    return run_dllint
