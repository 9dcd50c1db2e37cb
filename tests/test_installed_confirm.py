"""`dllint confirm` as a user installs it: a wheel built from this checkout, installed into a fresh virtual
environment (not editable, no PYTHONPATH), run on a buggy training script and on its fixed twin.

Installing torch into the new environment from the wheel would take minutes, so the environment gets the
development environment's torch, libcst and click (and everything they need) as links inside its own
site-packages, next to the installed dllint: exactly the layout of `pip install 'dllint[runtime]'`.
"""

import glob
import os
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

pytest.importorskip("torch")

TRAINING_SCRIPT = '''"""A small classifier trained on synthetic data{docstring}."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def main():
    torch.manual_seed(0)
    features = torch.randn(256, 20)
    labels = (features[:, :4].sum(dim=1) > 0).long() + 2 * (features[:, 4] > 0).long()
    loader = DataLoader(TensorDataset(features, labels), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(5):
        for inputs, targets in loader:
{clear}            logits = model(inputs)
            loss = criterion({prediction}, targets)
            loss.backward()
            optimizer.step()
        print(f"epoch {{epoch}}: loss {{loss.item():.3f}}")


if __name__ == "__main__":
    main()
'''
BUGGY = TRAINING_SCRIPT.format(docstring=": gradients never cleared, softmax fed to CrossEntropyLoss", clear="",
                               prediction="torch.softmax(logits, dim=1)")
CLEAN = TRAINING_SCRIPT.format(docstring="", clear="            optimizer.zero_grad()\n", prediction="logits")


def _requirements(distribution, extras=()):
    for text in distribution.requires or ():
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in ("", *extras)]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
            yield requirement.name


def _link_installed(names, site_packages):
    """Link the installed files of these distributions and of everything they require into site_packages."""
    seen, pending = set(), list(names)
    while pending:
        name = pending.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement this environment does without
        pending.extend(_requirements(distribution))
        root = distribution.locate_file("")
        for top in {path.parts[0] for path in distribution.files or () if path.parts[0] != ".."}:
            source, target = os.path.join(root, top), os.path.join(site_packages, top)
            if os.path.exists(source) and not os.path.lexists(target):
                os.symlink(source, target)


@pytest.fixture(scope="module")
def installed_dllint(tmp_path_factory):
    """The `dllint` command of a fresh virtual environment holding the wheel of this checkout."""
    base = tmp_path_factory.mktemp("installed-confirm")
    wheels = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), ROOT], check=True, capture_output=True)
    wheel = glob.glob(str(wheels / "dllint-*.whl"))[0]
    environment = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True,
                   capture_output=True)
    python = environment / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip()
    dependencies = [name for name in _requirements(metadata.distribution("dllint"), extras=("runtime",))]
    _link_installed(dependencies, site_packages)
    # The dependencies are there already: pip checks them and installs only dllint, offline.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    f"{wheel}[runtime]"], check=True, capture_output=True)
    return environment / "bin" / "dllint", site_packages


def _run_confirm(dllint, folder, name):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return subprocess.run([str(dllint), "confirm", "--format", "json", "--steps", "8", name], cwd=folder,
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(sysconfig.get_platform().startswith("win"), reason="bin/ layout of POSIX environments")
def test_installed_wheel_confirms_the_buggy_script_and_passes_its_fixed_twin(installed_dllint, tmp_path):
    import json

    dllint, site_packages = installed_dllint
    (tmp_path / "train_buggy.py").write_text(BUGGY)
    (tmp_path / "train_fixed.py").write_text(CLEAN)
    located = subprocess.run([str(dllint.parent / "python"), "-c", "import dllint; print(dllint.__file__)"],
                             cwd=tmp_path, capture_output=True, text=True,
                             env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    assert located.stdout.startswith(site_packages), located  # the wheel runs, not this checkout
    with ThreadPoolExecutor(max_workers=2) as pool:
        buggy, fixed = pool.map(lambda name: _run_confirm(dllint, tmp_path, name), ["train_buggy.py", "train_fixed.py"])

    assert buggy.returncode == 1, buggy.stderr
    report = json.loads(buggy.stdout)
    assert report["run"]["status"] == "finished" and report["run"]["steps"] == 8
    assert {(f["code"], f["verdict"]) for f in report["findings"]} == {("DL101", "CONFIRMED"), ("DL201", "CONFIRMED")}
    assert fixed.returncode == 0, fixed.stderr
    report = json.loads(fixed.stdout)
    assert report["run"]["status"] == "finished" and report["run"]["steps"] == 8
    assert not report["findings"] and not [f for f in report["runtime_findings"] if f["severity"] != "info"]
