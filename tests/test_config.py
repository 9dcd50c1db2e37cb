"""[tool.dllint] in pyproject.toml, the flags that override it, and `dllint config`, through the CLI."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from dllint import registry
from dllint.config import locate_key
from tests.conftest import BUGGY_SCRIPT, ROOT, run_dllint
from tests.invoke import invoke

BUGGY = BUGGY_SCRIPT


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def reported(result):
    assert result.returncode in (0, 1), result.stderr
    return sorted((f["path"].replace(os.sep, "/"), f["code"]) for f in json.loads(result.stdout))


def lint(cwd, *args):
    return reported(invoke("--format", "json", *args, cwd=cwd))


def test_settings_come_from_the_nearest_pyproject_above_the_linted_path(tmp_path):
    project = tmp_path / "project"
    write(project, "pyproject.toml", '[project]\nname = "demo"\n\n[tool.dllint]\nignore = ["DL101"]\n')
    write(project, "src/pkg/train.py", BUGGY)
    # Run from outside the project: the file is found from the linted path, not from the cwd.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = str(project / "src" / "pkg")
    assert lint(elsewhere, target) == [(f"{target}/train.py".replace(os.sep, "/"), "DL201")]
    # A pyproject.toml without [tool.dllint] on the way up is not ours and is passed over.
    write(project, "src/pyproject.toml", '[project]\nname = "inner"\n')
    assert lint(project, "src") == [("src/pkg/train.py", "DL201")]


def test_command_line_overrides_the_file(tmp_path):
    write(tmp_path, "pyproject.toml", textwrap.dedent("""\
        [tool.dllint]
        select = ["DL101"]
        severity = { DL101 = "warning" }
        """))
    write(tmp_path, "train.py", BUGGY)
    assert lint(tmp_path, "train.py") == [("train.py", "DL101")]
    assert lint(tmp_path, "--select", "DL201", "train.py") == [("train.py", "DL201")]
    assert lint(tmp_path, "--extend-select", "DL2", "train.py") == [("train.py", "DL101"), ("train.py", "DL201")]
    assert lint(tmp_path, "--isolated", "train.py") == [("train.py", "DL101"), ("train.py", "DL201")]
    data = json.loads(invoke("--format", "json", "--severity", "DL1=info", "train.py", cwd=tmp_path).stdout)
    assert [(d["code"], d["severity"]) for d in data] == [("DL101", "info")]
    default = json.loads(invoke("--format", "json", "train.py", cwd=tmp_path).stdout)
    assert [(d["code"], d["severity"]) for d in default] == [("DL101", "warning")]
    # --config names the file; a file of our own keeps the settings at the top level.
    write(tmp_path, "ci/dllint.toml", 'select = ["DL2"]\n')
    assert lint(tmp_path, "--config", "ci/dllint.toml", "train.py") == [("train.py", "DL201")]


def test_per_file_ignores_and_excludes(tmp_path):
    write(tmp_path, "pyproject.toml", textwrap.dedent("""\
        [tool.dllint]
        extend-exclude = ["generated", "src/legacy/*"]

        [tool.dllint.per-file-ignores]
        "tests/*" = ["DL101"]
        "*_demo.py" = ["DL2"]
        """))
    for name in ("src/train.py", "tests/train_helpers.py", "src/model_demo.py", "src/generated/train.py",
                 "src/legacy/old.py", "venv/lib/train.py"):
        write(tmp_path, name, BUGGY)
    assert lint(tmp_path, ".") == [
        ("src/model_demo.py", "DL101"),
        ("src/train.py", "DL101"), ("src/train.py", "DL201"),
        ("tests/train_helpers.py", "DL201"),
    ]
    # Patterns with a slash are relative to the config file, whatever directory is linted.
    assert ("src/legacy/old.py", "DL101") not in lint(tmp_path, "src")
    # Per-file ignores hold for a file named explicitly, excludes do not.
    assert lint(tmp_path, "tests/train_helpers.py", "src/generated/train.py") == [
        ("src/generated/train.py", "DL101"), ("src/generated/train.py", "DL201"),
        ("tests/train_helpers.py", "DL201")]
    # `exclude` replaces the built-in list, so venv/ is linted once it is not named.
    write(tmp_path, "pyproject.toml", '[tool.dllint]\nexclude = ["src", "tests"]\nselect = ["DL101"]\n')
    assert lint(tmp_path, ".") == [("venv/lib/train.py", "DL101")]


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_files_ignored_by_git_are_skipped_unless_named(tmp_path):
    _git(tmp_path, "init", "-q")
    write(tmp_path, ".gitignore", "outputs/\nscratch_*.py\n")
    for name in ("train.py", "scratch_try.py", "outputs/run1/train_copy.py", "sub dir/ok.py"):
        write(tmp_path, name, BUGGY)
    walked = {path for path, _ in lint(tmp_path, "--select", "DL101", ".")}
    assert walked == {"train.py", "sub dir/ok.py"}
    named = {path for path, _ in lint(tmp_path, "--select", "DL101", "scratch_try.py", "outputs")}
    assert named == {"scratch_try.py", "outputs/run1/train_copy.py"}
    flag = {path for path, _ in lint(tmp_path, "--select", "DL101", "--no-respect-gitignore", ".")}
    assert len(flag) == 4
    write(tmp_path, "pyproject.toml", "[tool.dllint]\nrespect-gitignore = false\n")
    assert {path for path, _ in lint(tmp_path, "--select", "DL101", ".")} == flag


def test_gitignore_outside_a_repository_or_without_git(tmp_path):
    write(tmp_path, ".gitignore", "*.py\n")
    write(tmp_path, "train.py", BUGGY)
    assert lint(tmp_path, "--select", "DL101", ".") == [("train.py", "DL101")]
    no_git = tmp_path / "bin"
    no_git.mkdir()
    environment = {"PATH": str(no_git), "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "dllint", "--select", "DL101", "."], cwd=tmp_path,
                            capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 1 and result.stdout.startswith("train.py:10:5: DL101"), result.stderr


BAD_CONFIGS = [
    ('[tool.dllint]\nselect = ["DL101"]\nselct = ["DL1"]\n',
     "pyproject.toml:3: tool.dllint.selct: unknown key; did you mean 'select'?"),
    ('[tool.dllint]\nignore = [\n    "DL101",\n    "DL777",\n]\n',
     "pyproject.toml:4: tool.dllint.ignore: unknown rule code or prefix: DL777"),
    ('[tool.dllint]\n\n[tool.dllint.severity]\nDL101 = "fatal"\n',
     "pyproject.toml:4: tool.dllint.severity.DL101: expected one of error, warning, info, got 'fatal'"),
    ('[tool.dllint]\nrespect-gitignore = "yes"\n',
     "pyproject.toml:2: tool.dllint.respect-gitignore: expected a boolean, got a string"),
    ('[tool.dllint]\nper-file-ignores = { "tests/*" = "DL101" }\n',
     'pyproject.toml:2: tool.dllint.per-file-ignores."tests/*": expected an array of strings, got a string'),
    ('[tool.dllint]\nselect = ["DL101"\n',
     "pyproject.toml:3: TOML syntax error: "),
    ('[tool.dllint]\nextend-select = [DL101]\n',
     "pyproject.toml:2: extend-select: TOML syntax error: "),
]


@pytest.mark.parametrize("text, message", BAD_CONFIGS, ids=["unknown-key", "unknown-code", "bad-severity",
                                                             "wrong-type", "wrong-item-type", "unclosed",
                                                             "bare-code"])
def test_a_bad_config_is_a_one_line_error(tmp_path, text, message):
    write(tmp_path, "pyproject.toml", text)
    write(tmp_path, "train.py", BUGGY)
    result = invoke("train.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    if message.endswith(": "):  # the parser's own wording follows, and varies between versions
        assert result.stderr.startswith(f"dllint: error: {message}")
    else:
        assert result.stderr == f"dllint: error: {message}\n"


def test_a_bad_config_in_a_real_process_leaves_no_traceback(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.dllint]\nselect = "DL1"\n')
    write(tmp_path, "train.py", BUGGY)
    result = run_dllint("train.py", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("dllint: error: pyproject.toml:2: tool.dllint.select: "
                             "expected an array of strings, got a string\n")


def test_bad_flags_and_missing_config_file(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    missing = invoke("--config", "nope.toml", "train.py", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (2, "dllint: error: nope.toml: configuration file not found\n")
    severity = invoke("--severity", "DL101=loud", "train.py", cwd=tmp_path)
    assert severity.returncode == 2
    assert severity.stderr == "dllint: error: --severity: expected CODE=error|warning|info, got 'DL101=loud'\n"


def test_config_command_prints_the_effective_settings(tmp_path):
    write(tmp_path, "pyproject.toml", textwrap.dedent("""\
        [tool.dllint]
        select = ["DL1", "DL201"]
        per-file-ignores = { "tests/*" = ["DL1"] }
        extend-exclude = ["generated"]
        severity = { DL101 = "warning" }
        """))
    (tmp_path / "sub").mkdir()
    training_rules = [rule.code for rule in registry.all_rules() if rule.code.startswith("DL1")]
    selected = sorted({"DL000", "DL201", "DL998", "DL999", *training_rules})
    text = invoke("config", cwd=tmp_path / "sub")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    config_file = os.path.realpath(tmp_path / "pyproject.toml")
    assert os.path.realpath(lines[0].split("settings from ")[1].split(",")[0]) == config_file
    assert f"select = {json.dumps(selected)}" in lines
    assert f'per-file-ignores = {{ "tests/*" = {json.dumps(training_rules)} }}' in lines
    assert 'severity = { "DL101" = "warning" }' in lines
    assert "respect-gitignore = true" in lines
    data = json.loads(invoke("config", "--format", "json", "--ignore", "DL102", "--no-respect-gitignore",
                             cwd=tmp_path).stdout)
    assert os.path.realpath(data["config-file"]) == config_file
    assert data["select"] == [code for code in selected if code != "DL102"]
    assert data["exclude"][-1] == "generated" and ".venv" in data["exclude"]
    assert data["respect-gitignore"] is False
    isolated = json.loads(invoke("config", "--format", "json", "--isolated", cwd=tmp_path).stdout)
    assert isolated["config-file"] is None
    assert isolated["select"] == [r.code for r in registry.all_rules() if r.info.default]  # opt-in rules left out


def test_locate_key_finds_tables_dotted_keys_and_inline_tables():
    text = textwrap.dedent("""\
        [tool.black]
        select = 1
        [tool.dllint]
        select = ["DL101"]
        severity = { DL101 = "info", "DL201" = "warning" }
        [tool.dllint.per-file-ignores]
        "tests/*" = ["DL101"]
        """)
    assert locate_key(text, ["tool", "dllint", "select"]) == 4
    assert locate_key(text, ["tool", "dllint", "severity", "DL201"]) == 5
    assert locate_key(text, ["tool", "dllint", "per-file-ignores", "tests/*"]) == 7
    assert locate_key(text, ["tool", "dllint", "per-file-ignores"]) == 6
    assert locate_key(text, ["tool", "dllint", "missing"]) == 3
    assert locate_key('[tool]\ndllint.ignore = ["DL1"]\n', ["tool", "dllint", "ignore"]) == 2
