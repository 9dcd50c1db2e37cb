"""The default selection, as ruff has one: opt-in rules run only where a selection names them.

A realistic fine-tuning script with one DL509 bug (a non-strict load whose missing keys nobody reads)
and one DL507 bug is linted through the command line with selections from the command line and from
the configuration file.
"""

import json
import os
import shutil

from dllint import registry
from dllint.config import ENGINE_CODES, resolve
from tests.conftest import FIXTURES, run_dllint
from tests.invoke import invoke

OPT_IN = "DL509"
SCRIPT = "module_segmentation_resume_then_reset_parameters.py"  # Buggy: DL507, DL509


def _codes(result):
    assert result.returncode in (0, 1), result.stderr
    return sorted({finding["code"] for finding in json.loads(result.stdout)})


def _project(tmp_path, config=None):
    shutil.copy(os.path.join(FIXTURES, SCRIPT), tmp_path / "train.py")
    if config is not None:
        (tmp_path / "pyproject.toml").write_text("[tool.dllint]\n" + config)
    return tmp_path


def _lint(tmp_path, *options):
    return _codes(invoke("--format", "json", "--no-cache", *options, "train.py", cwd=tmp_path))


def test_the_default_selection_is_every_rule_but_the_opt_in_ones():
    opt_in = {rule.code for rule in registry.all_rules() if not rule.info.default}
    assert opt_in == {OPT_IN}
    default = resolve([], None, os.getcwd()).active_codes
    assert set(default) == {rule.code for rule in registry.all_rules()} - opt_in
    assert set(ENGINE_CODES) <= set(default)


def test_a_default_run_leaves_the_opt_in_rule_out(tmp_path):
    _project(tmp_path)
    assert _lint(tmp_path) == ["DL507"]


def test_a_selection_that_names_the_rule_by_code_prefix_name_or_all_runs_it(tmp_path):
    _project(tmp_path)
    assert _lint(tmp_path, "--select", "DL509") == ["DL509"]
    assert _lint(tmp_path, "--select", "load-state-dict-unchecked") == ["DL509"]
    assert _lint(tmp_path, "--select", "DL5") == ["DL507", "DL509"]
    assert _lint(tmp_path, "--select", "ALL") == ["DL507", "DL509"]
    assert _lint(tmp_path, "--extend-select", "DL509") == ["DL507", "DL509"]  # added to the default


def test_ignore_wins_over_any_selection(tmp_path):
    _project(tmp_path)
    assert _lint(tmp_path, "--select", "DL509", "--ignore", "DL509") == []
    assert _lint(tmp_path, "--select", "ALL", "--ignore", "load-state-dict-unchecked") == ["DL507"]
    assert _lint(tmp_path, "--extend-select", "DL509", "--ignore", "DL5") == []


def test_the_configuration_file_selects_the_same_way(tmp_path):
    _project(tmp_path, 'extend-select = ["DL509"]\n')
    assert _lint(tmp_path) == ["DL507", "DL509"]
    assert _lint(tmp_path, "--ignore", "DL509") == ["DL507"]  # the command line's ignore wins
    assert _lint(tmp_path, "--select", "DL507") == ["DL507"]  # a later select starts over
    _project(tmp_path, 'select = ["DL5"]\nignore = ["DL507"]\n')
    assert _lint(tmp_path) == ["DL509"]
    _project(tmp_path, 'ignore = ["DL1"]\n')  # a file that only ignores keeps the default selection
    assert _lint(tmp_path) == ["DL507"]


def test_a_suppression_of_an_opt_in_rule_is_not_reported_unused_in_a_default_run(tmp_path):
    """The comment still matters in a run that selects the rule."""
    _project(tmp_path)
    source = (tmp_path / "train.py").read_text()
    line = next(text for text in source.splitlines() if "# expect: DL509" in text)
    (tmp_path / "train.py").write_text(source.replace(line, line.replace("# expect: DL509", "# noqa: DL509")))
    assert _lint(tmp_path, "--warn-unused-suppressions") == ["DL507"]
    assert _lint(tmp_path, "--warn-unused-suppressions", "--select", "DL509") == []


def test_list_rules_and_explain_show_opt_in_rules():
    text = run_dllint("list-rules").stdout.splitlines()
    marked = [line.split()[0] for line in text if line.split()[3] == "opt-in"]
    assert marked == [OPT_IN]
    assert all(line.split()[3] in ("default", "opt-in") for line in text)
    listed = json.loads(run_dllint("list-rules", "--format", "json").stdout)
    assert [entry["code"] for entry in listed if not entry["default"]] == [OPT_IN]
    page = run_dllint("explain", "load-state-dict-unchecked").stdout
    assert "**Opt-in:**" in page and "--select DL509" in page
    assert "**Opt-in:**" not in run_dllint("explain", "DL507").stdout
