"""`dllint --stdin-filename NAME -`: an editor's unsaved buffer, linted under the file's name."""

import json
import os
import textwrap

from tests.conftest import BUGGY_SCRIPT, run_dllint
from tests.invoke import invoke

BUGGY = BUGGY_SCRIPT


def codes_at(result):
    assert result.returncode in (0, 1), result.stderr
    return [(f["path"], f["line"], f["code"]) for f in json.loads(result.stdout)]


def test_the_buffer_is_reported_under_the_given_name(tmp_path):
    # The file on disk is clean; the buffer being edited is not, and the buffer is what counts.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import torch\n")
    name = os.path.join("src", "train.py")
    result = run_dllint("--stdin-filename", name, "-", cwd=tmp_path, input=BUGGY)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(f"{name}:8:22: DL201 [softmax-into-cross-entropy] ")
    assert result.stderr.splitlines()[0] == "Found 2 problems in 1 file (1 file checked)."
    # The name need not exist on disk, and `-` alone is named `-`.
    unsaved = run_dllint("--format", "json", "--stdin-filename", "new/untitled.py", "-", cwd=tmp_path, input=BUGGY)
    assert codes_at(unsaved) == [(os.path.join("new", "untitled.py"), 8, "DL201"),
                                 (os.path.join("new", "untitled.py"), 10, "DL101")]
    anonymous = run_dllint("--format", "json", "-", cwd=tmp_path, input=BUGGY)
    assert [path for path, _, _ in codes_at(anonymous)] == ["-", "-"]


def test_config_and_per_file_ignores_apply_to_the_name(tmp_path):
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.dllint]
        severity = { DL201 = "warning" }
        per-file-ignores = { "tests/*" = ["DL101"] }
        """))
    name = str(project / "tests" / "train_helpers.py")
    # Run from elsewhere, as editors do: the config is found from the name, not from the cwd.
    result = invoke("--format", "json", "--stdin-filename", name, "-", cwd=tmp_path, input=BUGGY)
    data = json.loads(result.stdout)
    assert [(d["code"], d["severity"]) for d in data] == [("DL201", "warning")]
    outside = invoke("--format", "json", "--stdin-filename", str(project / "train.py"), "-", cwd=tmp_path,
                         input=BUGGY)
    assert [code for _, _, code in codes_at(outside)] == ["DL201", "DL101"]
    isolated = invoke("--format", "json", "--isolated", "--stdin-filename", name, "-", cwd=tmp_path,
                          input=BUGGY)
    assert [d["severity"] for d in json.loads(isolated.stdout)] == ["error", "error"]


def test_suppressions_and_parse_errors_in_the_buffer(tmp_path):
    suppressed = BUGGY.replace("optimizer.step()", "optimizer.step()  # dllint: ignore[DL101]")
    result = invoke("--format", "json", "--stdin-filename", "train.py", "-", cwd=tmp_path, input=suppressed)
    assert codes_at(result) == [("train.py", 8, "DL201")]
    broken = invoke("--format", "json", "--stdin-filename", "train.py", "-", cwd=tmp_path,
                        input="import torch\ndef f(:\n")
    assert codes_at(broken) == [("train.py", 2, "DL000")]


def test_stdin_cannot_be_mixed_with_paths(tmp_path):
    (tmp_path / "a.py").write_text("import torch\n")
    result = invoke("--stdin-filename", "b.py", "-", "a.py", cwd=tmp_path, input=BUGGY)
    assert result.returncode == 2
    assert result.stderr == "dllint: error: `-` (stdin) cannot be combined with other paths\n"
