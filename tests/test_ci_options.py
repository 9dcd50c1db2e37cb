"""What pre-commit and CI runs reach for, as ruff offers it: --force-exclude, --exit-zero,
--exit-non-zero-on-fix, --output-file, --statistics, the fixable marker, -q, rule names for codes,
`dllint check` without paths, files skipped for their size, --show-suppressed in order."""

import json
import os
import re

import pytest

from tests.conftest import ROOT
from tests.invoke import invoke
from tests.test_formats import SARIF_SCHEMA, validate_sarif
from tests.training_script import TRAIN_SCRIPT, TRAIN_SCRIPT_FINDINGS


def _project(tmp_path, config=""):
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    if config:
        (tmp_path / "pyproject.toml").write_text("[tool.dllint]\n" + config)
    return tmp_path


def _codes(result):
    return [(f["line"], f["code"]) for f in json.loads(result.stdout)]


def test_force_exclude_applies_the_excludes_to_named_files(tmp_path):
    _project(tmp_path, 'extend-exclude = ["legacy"]\n')
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old_train.py").write_text(TRAIN_SCRIPT)
    named = os.path.join("legacy", "old_train.py")
    # Named without the flag, an excluded file is linted (as before); pre-commit names every file.
    assert invoke(named, "--no-cache", cwd=tmp_path).returncode == 1
    forced = invoke("--force-exclude", named, "train.py", "--no-cache", "--format", "json", cwd=tmp_path)
    assert {f["path"] for f in json.loads(forced.stdout)} == {"train.py"}
    alone = invoke("--force-exclude", named, "--no-cache", cwd=tmp_path)
    assert alone.returncode == 0 and alone.stdout == ""
    assert alone.stderr.strip() == "All checks passed (0 files checked)."
    # The setting in the file, and the flag that turns it off again.
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nextend-exclude = ["legacy"]\nforce-exclude = true\n')
    assert invoke(named, "--no-cache", cwd=tmp_path).returncode == 0
    assert invoke("--no-force-exclude", named, "--no-cache", cwd=tmp_path).returncode == 1
    # stdin named after an excluded file: nothing reported, and with --fix the buffer comes back unchanged.
    piped = invoke("--fix", "--stdin-filename", named, "-", cwd=tmp_path, input=TRAIN_SCRIPT)
    assert piped.returncode == 0 and piped.stdout == TRAIN_SCRIPT


def test_the_pre_commit_hooks_force_the_excludes():
    with open(os.path.join(ROOT, ".pre-commit-hooks.yaml")) as handle:
        entries = re.findall(r"^\s*entry:\s*(.+)$", handle.read(), re.MULTILINE)
    assert entries and all("--force-exclude" in entry.split() for entry in entries)


def test_a_hook_that_rewrites_files_runs_in_one_process():
    # pre-commit splits the staged files between processes unless require_serial is set; a batch that
    # applies fixes would then rewrite files that another batch reads as project context.
    with open(os.path.join(ROOT, ".pre-commit-hooks.yaml")) as handle:
        hooks = re.split(r"^- id:", handle.read(), flags=re.MULTILINE)[1:]
    fixing = [hook for hook in hooks if "--fix" in re.search(r"entry:\s*(.+)", hook).group(1).split()]
    assert fixing and all(re.search(r"require_serial:\s*true", hook) for hook in fixing)


def test_exit_zero_keeps_the_report_but_not_a_configuration_error(tmp_path):
    _project(tmp_path)
    result = invoke("--exit-zero", "--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.count("train.py:") == len(TRAIN_SCRIPT_FINDINGS)
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nselect = ["DL777"]\n')
    broken = invoke("--exit-zero", "--no-cache", "train.py", cwd=tmp_path)
    assert broken.returncode == 2 and broken.stderr.startswith("dllint: error: pyproject.toml:2:")


def test_exit_non_zero_on_fix_reports_that_files_changed(tmp_path):
    _project(tmp_path)
    args = ("--fix", "--select", "DL303,DL505", "--no-cache", "train.py")
    assert invoke(*args, cwd=tmp_path).returncode == 0  # everything fixed: clean
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    fixed = invoke("--exit-non-zero-on-fix", *args, cwd=tmp_path)
    assert fixed.returncode == 1 and "Fixed 2 problems." in fixed.stderr
    again = invoke("--exit-non-zero-on-fix", *args, cwd=tmp_path)  # nothing left to fix
    assert again.returncode == 0


@pytest.mark.parametrize("output_format", ["sarif", "json", "text", "junit"])
def test_output_file_holds_the_report_in_any_format(output_format, tmp_path):
    _project(tmp_path)
    on_stdout = invoke("--format", output_format, "--no-cache", "train.py", cwd=tmp_path)
    target = os.path.join("reports", f"dllint.{output_format}")
    result = invoke("--format", output_format, "--output-file", target, "--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert (tmp_path / target).read_text() == on_stdout.stdout
    assert "Found 4 problems" in result.stderr
    # A clean run still writes a complete (empty) report: what CI uploads must parse.
    (tmp_path / "train.py").write_text("import torch\n")
    clean = invoke("--format", output_format, "--output-file", target, "--no-cache", "train.py", cwd=tmp_path)
    assert clean.returncode == 0
    if output_format == "sarif":
        assert json.loads((tmp_path / target).read_text())["runs"][0]["results"] == []


def test_output_file_that_cannot_be_written_is_a_one_line_error(tmp_path):
    _project(tmp_path)
    (tmp_path / "taken").write_text("a file, not a directory")
    result = invoke("--output-file", os.path.join("taken", "report.sarif"), "--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("dllint: error: ")


def test_statistics_count_findings_and_fixes_per_rule(tmp_path):
    _project(tmp_path)
    (tmp_path / "more.py").write_text(TRAIN_SCRIPT.replace("SmallCNN", "OtherCNN"))
    text = invoke("--statistics", "--no-cache", ".", cwd=tmp_path)
    assert text.returncode == 1
    rows = [line.split() for line in text.stdout.splitlines()]
    assert rows == [["2", "DL101", "missing-zero-grad"], ["2", "DL201", "softmax-into-cross-entropy"],
                    ["2", "DL303", "functional-dropout-always-on", "2", "fixable"],
                    ["2", "DL505", "forward-called-directly", "2", "fixable"]]
    data = json.loads(invoke("--statistics", "--format", "json", "--unsafe-fixes", "--no-cache", ".",
                             cwd=tmp_path).stdout)
    assert {entry["code"]: (entry["count"], entry["fixable"]) for entry in data} == \
        {"DL101": (2, 2), "DL201": (2, 2), "DL303": (2, 2), "DL505": (2, 2)}
    refused = invoke("--statistics", "--format", "sarif", ".", cwd=tmp_path)
    assert refused.returncode == 2 and "--statistics" in refused.stderr


def test_fixable_findings_are_marked_and_counted(tmp_path):
    _project(tmp_path)
    result = invoke("--no-cache", "train.py", cwd=tmp_path)
    marked = {line.split(":")[1]: "[*]" in line for line in result.stdout.splitlines()}
    assert marked == {"17": True, "27": False, "30": False, "38": True}  # DL201, DL101: unsafe fixes
    assert "train.py:17:20: DL303 [functional-dropout-always-on] [*] F.dropout()" in result.stdout
    assert result.stderr.splitlines()[-1] == "[*] 2 fixable with --fix; 2 more with --fix --unsafe-fixes."
    unsafe = invoke("--unsafe-fixes", "--no-cache", "train.py", cwd=tmp_path)
    assert "train.py:27:26: DL201 [softmax-into-cross-entropy] [*] " in unsafe.stdout
    assert unsafe.stderr.splitlines()[-1] == "[*] 4 fixable with --fix --unsafe-fixes."


def test_quiet_prints_the_findings_only(tmp_path):
    _project(tmp_path)
    loud = invoke("--no-cache", "train.py", cwd=tmp_path)
    for flag in ("-q", "--quiet"):
        quiet = invoke(flag, "--no-cache", "train.py", cwd=tmp_path)
        assert quiet.returncode == 1 and quiet.stdout == loud.stdout and quiet.stderr == ""
    fixed = invoke("-q", "--fix", "--no-cache", "train.py", cwd=tmp_path)
    assert fixed.stderr == "" and fixed.stdout.count("train.py:") == 2


def test_rule_names_are_accepted_wherever_codes_are(tmp_path):
    _project(tmp_path)
    assert _codes(invoke("--select", "missing-zero-grad,DL5", "--format", "json", "--no-cache", "train.py",
                         cwd=tmp_path)) == [(30, "DL101"), (38, "DL505")]
    assert _codes(invoke("--ignore", "forward-called-directly", "--per-file-ignores",
                         "train.py:softmax-into-cross-entropy", "--format", "json", "--no-cache", "train.py",
                         cwd=tmp_path)) == [(17, "DL303"), (30, "DL101")]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.dllint]\nselect = ["missing-zero-grad", "functional-dropout-always-on"]\n'
        '[tool.dllint.severity]\nmissing-zero-grad = "info"\n')
    configured = json.loads(invoke("--format", "json", "--no-cache", "train.py", cwd=tmp_path).stdout)
    assert [(f["code"], f["severity"]) for f in configured] == [("DL303", "error"), ("DL101", "info")]
    (tmp_path / "pyproject.toml").unlink()
    # In suppression comments too.
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT.replace("optimizer.step()\n",
                                                            "optimizer.step()  # dllint: ignore[missing-zero-grad]\n"))
    assert (30, "DL101") not in _codes(invoke("--format", "json", "--no-cache", "train.py", cwd=tmp_path))
    page = invoke("explain", "missing-zero-grad", cwd=tmp_path)
    assert page.returncode == 0 and page.stdout.startswith("# DL101")
    typo = invoke("--select", "missing-zero-gard", "train.py", cwd=tmp_path)
    assert typo.returncode == 2
    assert typo.stderr.strip() == ("dllint: error: unknown rule code or prefix: missing-zero-gard; "
                                   "did you mean 'missing-zero-grad'?")
    assert invoke("explain", "missing-zero", cwd=tmp_path).returncode == 2


def test_check_without_paths_lints_the_working_directory(tmp_path):
    _project(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "loop.py").write_text(TRAIN_SCRIPT)
    bare = invoke("check", "--no-cache", "--format", "json", cwd=tmp_path)
    assert {f["path"] for f in json.loads(bare.stdout)} == {"train.py", os.path.join("pkg", "loop.py")}
    assert bare.stdout == invoke("check", ".", "--no-cache", "--format", "json", cwd=tmp_path).stdout


def test_a_file_skipped_for_its_size_is_never_reported_as_passed(tmp_path):
    _project(tmp_path)
    (tmp_path / "weights_table.py").write_text("import torch\nTABLE = [\n" + "    0.125,\n" * 250_000 + "]\n")
    alone = invoke("--no-cache", "weights_table.py", cwd=tmp_path)
    assert alone.returncode == 0
    assert "All checks passed" not in alone.stderr
    assert "dllint: warning: weights_table.py is larger than 2 MB: skipped" in alone.stderr
    assert alone.stderr.splitlines()[-1] == "No problems found (0 files checked; 1 file skipped: too large to analyse)."
    both = invoke("--no-cache", ".", cwd=tmp_path)
    assert "Found 4 problems in 1 file (1 file checked; 1 file skipped: too large to analyse)." in both.stderr
    # Reports that list files say so too: JUnit as a skipped case, SARIF as a notification.
    junit = invoke("--format", "junit", "--no-cache", "weights_table.py", cwd=tmp_path).stdout
    assert '<testsuites name="dllint" tests="1" failures="0" skipped="1" errors="0">' in junit
    assert '<skipped message="larger than 2 MB: not analysed" />' in junit
    sarif = json.loads(invoke("--format", "sarif", "--no-cache", "weights_table.py", cwd=tmp_path).stdout)
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [(n["level"], n["message"]["text"]) for n in notes] == \
        [("warning", "weights_table.py: larger than 2 MB: not analysed")]
    assert notes[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "weights_table.py"
    if os.path.isfile(SARIF_SCHEMA):
        validate_sarif(sarif)


def test_suppressed_findings_are_listed_in_order_with_the_rest(tmp_path):
    _project(tmp_path)
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT.replace("        features = F.dropout(features, 0.25)\n",
                                                            "        features = F.dropout(features, 0.25)  # noqa\n"))
    text = invoke("--show-suppressed", "--no-cache", "train.py", cwd=tmp_path)
    lines = [int(line.split(":")[1]) for line in text.stdout.splitlines()]
    assert lines == [17, 27, 30, 38] and "(suppressed by `# noqa` on line 17)" in text.stdout.splitlines()[0]
    data = json.loads(invoke("--show-suppressed", "--format", "json", "--no-cache", "train.py", cwd=tmp_path).stdout)
    assert [(f["line"], "suppressed_by" in f) for f in data] == [(17, True), (27, False), (30, False), (38, False)]
    sarif = json.loads(invoke("--show-suppressed", "--format", "sarif", "--no-cache", "train.py", cwd=tmp_path).stdout)
    results = sarif["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results] == [17, 27, 30, 38]
    assert "suppressions" in results[0]


def test_readme_ci_recipe_fails_on_a_configuration_error_and_always_writes_the_sarif():
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    commands = re.findall(r"^\s*- run: (dllint .*)$", readme, re.MULTILINE)
    sarif = [c for c in commands if "sarif" in c]
    assert sarif, "the README's GitHub Actions recipe is gone"
    for command in sarif:
        assert "|| true" not in command and "--exit-zero" in command and "--output-file" in command
