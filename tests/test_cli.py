"""The command line as users run it: paths, selection, formats, exit codes, subcommands."""

import json
import os

from tests.conftest import BUGGY_SCRIPT, ROOT, run_dllint

BUGGY = BUGGY_SCRIPT


def write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_text_output_lines_are_sorted_and_summary_goes_to_stderr(tmp_path):
    write(tmp_path, "b.py", BUGGY)
    write(tmp_path, "a.py", BUGGY)
    result = run_dllint(".", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("a.py:8:")
    assert [l.split(":")[0] for l in lines] == sorted(l.split(":")[0] for l in lines)
    assert "a.py:10:5: DL101 [missing-zero-grad] " in result.stdout
    assert "a.py:8:22: DL201 [softmax-into-cross-entropy] " in result.stdout
    assert result.stderr.splitlines() == ["Found 4 problems in 2 files (2 files checked).",
                                          "4 fixable with --fix --unsafe-fixes."]


def test_clean_code_exits_zero(tmp_path):
    write(tmp_path, "clean.py", "import torch\nx = torch.zeros(3)\n")
    result = run_dllint(str(tmp_path / "clean.py"))
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr.strip() == "All checks passed (1 file checked)."


def test_json_output_fields(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    result = run_dllint("--format", "json", "train.py", cwd=tmp_path)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert [d["code"] for d in data] == ["DL201", "DL101"]
    first = data[0]
    assert set(first) == {"path", "line", "column", "end_line", "end_column", "code", "name", "severity",
                          "message", "fix"}
    assert (first["path"], first["line"], first["column"]) == ("train.py", 8, 22)
    assert first["end_line"] == 8 and first["end_column"] > first["column"]
    assert first["severity"] == "error"
    assert first["fix"]["applicability"] == "unsafe" and first["fix"]["edits"][0]["content"] == "model(x)"


def test_select_and_ignore_by_code_and_prefix(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    only_loss = run_dllint("--select", "DL2", "train.py", cwd=tmp_path)
    assert "DL201" in only_loss.stdout and "DL101" not in only_loss.stdout
    ignored = run_dllint("--ignore", "DL101,DL201", "train.py", cwd=tmp_path)
    assert ignored.returncode == 0 and ignored.stdout == ""


def test_unknown_code_is_a_one_line_usage_error(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    result = run_dllint("--select", "DL777", "train.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "dllint: error: unknown rule code or prefix: DL777"


def test_missing_path_is_an_error_without_traceback(tmp_path):
    result = run_dllint(str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_directory_walk_skips_environments_and_excludes(tmp_path):
    write(tmp_path, "src/train.py", BUGGY)
    write(tmp_path, "venv/lib/train.py", BUGGY)
    write(tmp_path, ".venv/lib/train.py", BUGGY)
    write(tmp_path, "build/train.py", BUGGY)
    write(tmp_path, "src/generated/train.py", BUGGY)
    write(tmp_path, "src/notes.txt", BUGGY)
    result = run_dllint(".", "--exclude", "generated", cwd=tmp_path)
    paths = {line.split(":")[0] for line in result.stdout.splitlines()}
    assert paths == {os.path.join("src", "train.py")}
    # An explicitly named file is linted even inside a skipped directory.
    explicit = run_dllint(os.path.join("venv", "lib", "train.py"), cwd=tmp_path)
    assert explicit.returncode == 1


def test_check_subcommand_and_path_named_like_a_subcommand(tmp_path):
    write(tmp_path, "check/train.py", BUGGY)
    explicit = run_dllint("check", "check", cwd=tmp_path)
    assert explicit.returncode == 1 and "check/train.py" in explicit.stdout
    bare = run_dllint("check", cwd=tmp_path)  # the subcommand, without paths: the working directory, as ruff
    assert bare.returncode == 1 and bare.stdout == explicit.stdout


def test_a_directory_named_like_a_subcommand_does_not_hide_it(tmp_path):
    write(tmp_path, "list-rules/train.py", BUGGY)
    subcommand = run_dllint("list-rules", cwd=tmp_path)
    assert subcommand.returncode == 0 and "DL101  missing-zero-grad" in subcommand.stdout
    for spelled in (["check", "list-rules"], ["list-rules/"]):
        linted = run_dllint(*spelled, cwd=tmp_path)
        assert linted.returncode == 1 and "list-rules/train.py" in linted.stdout


def test_list_rules_text_and_json():
    text = run_dllint("list-rules")
    assert text.returncode == 0
    assert any(line.startswith("DL101  missing-zero-grad") for line in text.stdout.splitlines())
    data = json.loads(run_dllint("list-rules", "--format", "json").stdout)
    codes = [d["code"] for d in data]
    assert codes == sorted(codes) and "DL000" in codes and "DL999" in codes
    assert all(d["severity"] in ("error", "warning", "info") for d in data)


def test_explain_prints_the_page_and_rejects_unknown_codes():
    result = run_dllint("explain", "dl101")
    assert result.returncode == 0
    with open(os.path.join(ROOT, "rules", "DL101.md"), encoding="utf-8") as handle:
        assert result.stdout == handle.read()
    unknown = run_dllint("explain", "DL123")
    assert unknown.returncode == 2 and "unknown rule code" in unknown.stderr


def test_version():
    from dllint import __version__

    result = run_dllint("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"dllint {__version__}"


def test_test_code_is_judged_by_its_place_in_the_project_not_on_disk(tmp_path):
    # DL601 is quiet in test code (fixed order on purpose); a checkout that merely lives under a
    # folder named test/ is not test code.
    loader = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n\n"
              "train_set = TensorDataset(torch.zeros(64, 8), torch.zeros(64))\n"
              "train_loader = DataLoader(train_set, batch_size=8)\n")
    project = tmp_path / "test" / "project"
    (project / "tests").mkdir(parents=True)
    (project / "train.py").write_text(loader)
    (project / "tests" / "helpers.py").write_text(loader)
    (project / "test_train.py").write_text(loader)
    result = run_dllint("--format", "json", "--no-cache", "--select", "DL601", str(project), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert [(os.path.basename(f["path"]), f["line"]) for f in json.loads(result.stdout)] == [("train.py", 5)]
