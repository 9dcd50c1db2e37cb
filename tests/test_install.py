"""`dllint explain` from a real (non-editable) install: the pages ship inside the wheel."""

import glob
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("install")
    wheels = target / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), ROOT], check=True, capture_output=True)
    wheel = glob.glob(str(wheels / "dllint-*.whl"))[0]
    site = target / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
                   check=True, capture_output=True)
    return site


def test_explain_reads_the_page_shipped_in_the_wheel(installed, tmp_path):
    code = "import sys; sys.path.insert(0, %r); from dllint.cli import main; main(['explain', 'DL201'])" % str(installed)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(installed / "dllint" / "pages" / "DL201.md")
    with open(os.path.join(ROOT, "rules", "DL201.md"), encoding="utf-8") as handle:
        assert result.stdout == handle.read()
