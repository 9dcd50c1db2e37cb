import os
import shutil
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


@pytest.fixture(scope="session")
def fixture_findings():
    """The findings of one lint of the whole fixtures directory with every rule (the README's first
    command), for the tests that each read them differently."""
    from dllint import registry
    from dllint.runner import lint_paths

    return tuple(lint_paths([FIXTURES], [r.code for r in registry.all_rules()]).findings)


@pytest.fixture(scope="session")
def fixtures_command_line_run(tmp_path_factory):
    """`dllint --format json --jobs 1 --no-cache fixtures` on a copy of the fixtures, in a child process
    that then says on stderr whether the run imported torch (`torch imported: False`): every check runs
    in that process, with nothing answered from a cache."""
    directory = tmp_path_factory.mktemp("command_line")
    shutil.copytree(FIXTURES, directory / "fixtures")
    probe = ("import sys\nfrom dllint.cli import main\n"
             "try:\n    main(['--format', 'json', '--jobs', '1', '--no-cache', 'fixtures'])\n"
             "except SystemExit:\n    pass\n"
             "sys.stderr.write('torch imported: %s' % ('torch' in sys.modules))\n")
    paths = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return subprocess.run([sys.executable, "-c", probe], cwd=directory, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)), timeout=300)


def _background_runs(session):
    """tests/test_runtime.py's runs of `dllint confirm` when a selected test uses them, else None."""
    for item in getattr(session, "items", ()):
        if "confirm_runs" in getattr(item, "fixturenames", ()):
            return item.module.BACKGROUND_RUNS
    return None


def pytest_collection_finish(session):
    # A minute of child processes: they start on one thread now, beside the tests that come first (mostly
    # one process at a time), instead of all at once when the first runtime test asks.
    runs = _background_runs(session)
    if runs is not None and not session.config.option.collectonly:
        runs.start(threads=1)


def pytest_sessionfinish(session):
    runs = _background_runs(session)
    if runs is not None:
        runs.stop()
