"""--fix keeps every byte it does not fix: BOM, a coding cookie's encoding, CRLF and lone CR; --diff
shows exactly what --fix writes; stdin; files that cannot be written or that change meanwhile."""

import os
import shutil
import subprocess

import pytest

import dllint.runner
from tests.invoke import invoke
from tests.training_script import TRAIN_SCRIPT

# The script with a non-ASCII comment, so that the encoding matters.
SCRIPT = TRAIN_SCRIPT.replace('import argparse\n', 'import argparse  # données: CIFAR-10\n')
# What --fix --unsafe-fixes makes of SCRIPT (DL303, DL201, DL101, DL505).
FIXED = SCRIPT \
    .replace("F.dropout(features, 0.25)", "F.dropout(features, 0.25, training=self.training)") \
    .replace("criterion(F.softmax(logits, dim=1),", "criterion(logits,") \
    .replace("        loss.backward()\n", "        optimizer.zero_grad()\n        loss.backward()\n") \
    .replace("model.forward(images)", "model(images)")

LATIN_1_COOKIE = "# -*- coding: latin-1 -*-\n"
VARIANTS = {
    # name: (original bytes, fixed bytes)
    "utf8_bom": (b"\xef\xbb\xbf" + SCRIPT.encode(), b"\xef\xbb\xbf" + FIXED.encode()),
    "latin1_cookie": ((LATIN_1_COOKIE + SCRIPT).encode("latin-1"), (LATIN_1_COOKIE + FIXED).encode("latin-1")),
    "crlf": (SCRIPT.replace("\n", "\r\n").encode(), FIXED.replace("\n", "\r\n").encode()),
    "lone_cr": (SCRIPT.replace("\n", "\r").encode(), FIXED.replace("\n", "\r").encode()),
    "no_final_newline": (SCRIPT.rstrip("\n").encode(), FIXED.rstrip("\n").encode()),
}


def test_the_unfixed_script_has_the_expected_fixes(tmp_path):
    # The baseline for the byte tests below: plain UTF-8 with LF is fixed into FIXED.
    (tmp_path / "train.py").write_text(SCRIPT)
    result = invoke("--fix", "--unsafe-fixes", "--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 0 and "Fixed 4 problems." in result.stderr, result.stderr
    assert (tmp_path / "train.py").read_text() == FIXED


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fix_keeps_encoding_bom_and_line_breaks(variant, tmp_path):
    original, expected = VARIANTS[variant]
    path = tmp_path / f"{variant}.py"
    path.write_bytes(original)
    result = invoke("--fix", "--unsafe-fixes", "--no-cache", path.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Fixed 4 problems." in result.stderr
    assert path.read_bytes() == expected


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_diff_applies_to_exactly_what_fix_writes(variant, tmp_path):
    original, expected = VARIANTS[variant]
    name = f"{variant}.py"
    (tmp_path / name).write_bytes(original)
    result = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "dllint"), "--diff", "--unsafe-fixes",
                             "--no-cache", name], cwd=tmp_path, capture_output=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert (tmp_path / name).read_bytes() == original  # --diff changes nothing
    (tmp_path / "fixes.patch").write_bytes(result.stdout)
    applied = subprocess.run(["git", "apply", "--unsafe-paths", "--whitespace=nowarn", "fixes.patch"], cwd=tmp_path,
                             capture_output=True, timeout=60)
    assert applied.returncode == 0, applied.stderr
    assert (tmp_path / name).read_bytes() == expected


def test_fix_on_stdin_prints_the_fixed_source(tmp_path):
    original, expected = VARIANTS["utf8_bom"]
    result = invoke("--fix", "--stdin-filename", "train.py", "-", cwd=tmp_path, input=original)
    assert result.returncode == 1  # DL101 and DL201 need --unsafe-fixes: still reported
    assert result.stdout_bytes == original.replace(b"F.dropout(features, 0.25)",
                                                   b"F.dropout(features, 0.25, training=self.training)") \
        .replace(b"model.forward(images)", b"model(images)")
    assert "train.py:30:9: DL101" in result.stderr and "Fixed 2 problems." in result.stderr
    unsafe = invoke("--fix", "--unsafe-fixes", "--stdin-filename", "train.py", "-", cwd=tmp_path, input=original)
    assert unsafe.returncode == 0 and unsafe.stdout_bytes == expected
    clean = invoke("--fix", "-", cwd=tmp_path, input=b"import torch\r\n")
    assert clean.returncode == 0 and clean.stdout_bytes == b"import torch\r\n"
    diff = invoke("--diff", "--stdin-filename", "train.py", "-", cwd=tmp_path, input=original)
    assert diff.returncode == 1 and "+            correct += (model(images)" in diff.stdout


def test_a_file_that_cannot_be_written_is_one_line_and_the_others_are_fixed(tmp_path, monkeypatch):
    (tmp_path / "locked.py").write_text(SCRIPT)
    (tmp_path / "open.py").write_text(SCRIPT)
    os.chmod(tmp_path / "locked.py", 0o444)
    if os.access(tmp_path / "locked.py", os.W_OK):  # root writes anyway: refuse the write as the OS would
        import builtins

        real_open = builtins.open

        def refusing_open(file, mode="r", *args, **kwargs):
            if str(file).endswith("locked.py") and any(c in mode for c in "wa+"):
                raise PermissionError(13, "Permission denied")
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
    result = invoke("--fix", "--unsafe-fixes", "--no-cache", "locked.py", "open.py", cwd=tmp_path)
    monkeypatch.undo()
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("dllint: error:")]
    assert errors == ["dllint: error: locked.py: cannot write the fixes: Permission denied"]
    assert "Traceback" not in result.stderr
    assert (tmp_path / "open.py").read_text() == FIXED
    assert (tmp_path / "locked.py").read_text() == SCRIPT


def test_fix_writes_only_files_unchanged_since_they_were_read(tmp_path, monkeypatch):
    for name in ("edited.py", "deleted.py", "steady.py"):
        (tmp_path / name).write_text(SCRIPT)
    real_lint_items = dllint.runner.lint_items
    edit = "# the user saved this while dllint ran\n"

    def lint_while_the_user_works(items, *args, **kwargs):
        result = real_lint_items(items, *args, **kwargs)
        if (tmp_path / "deleted.py").exists():  # only during the first lint
            (tmp_path / "edited.py").write_text(SCRIPT + edit)
            (tmp_path / "deleted.py").unlink()
        return result

    monkeypatch.setattr(dllint.runner, "lint_items", lint_while_the_user_works)
    result = invoke("--fix", "--unsafe-fixes", "--no-cache", "edited.py", "deleted.py", "steady.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "dllint: error: edited.py: the file changed while dllint ran; not fixed" in result.stderr
    assert "dllint: error: deleted.py: the file was deleted while dllint ran; not fixed" in result.stderr
    assert (tmp_path / "edited.py").read_text() == SCRIPT + edit
    assert not (tmp_path / "deleted.py").exists()
    assert (tmp_path / "steady.py").read_text() == FIXED


def test_missing_zero_grad_fix_is_offered_in_a_script_run_through_main(tmp_path):
    # The training loop is reached from main() under `if __name__ == "__main__":`; that view of the
    # loop used to be reported first, without the fix.
    import json

    (tmp_path / "train.py").write_text(SCRIPT)
    found = json.loads(invoke("--format", "json", "--select", "DL101", "--no-cache", "train.py", cwd=tmp_path).stdout)
    assert [(f["line"], f["fix"]["applicability"]) for f in found] == [(30, "unsafe")]
    assert found[0]["fix"]["edits"][0]["content"] == "optimizer.zero_grad()\n        "
