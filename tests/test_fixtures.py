"""Every fixture reports exactly the findings annotated in it with `# expect: CODE`."""

import collections
import os
import re

import pytest

from dllint import registry
from dllint.runner import lint_paths
from tests.conftest import FIXTURES
from tests.expectations import expected_findings, fixture_text, linted_files, python_files

NOTEBOOKS = os.path.join(FIXTURES, "notebooks")
# A fixture is a single file, a notebook in fixtures/notebooks/, or a directory (a multi-file package
# linted as one project).
FIXTURE_UNITS = sorted([os.path.join(FIXTURES, name) for name in os.listdir(FIXTURES)
                        if not name.startswith((".", "_")) and os.path.join(FIXTURES, name) != NOTEBOOKS and
                        (name.endswith(".py") or os.path.isdir(os.path.join(FIXTURES, name)))] +
                       [os.path.join(NOTEBOOKS, name) for name in os.listdir(NOTEBOOKS) if name.endswith(".ipynb")])


def _reported(findings):
    """{(absolute path, line, code)}: in a notebook the line is (cell, line in cell), found from the
    notebook's own cells."""
    from dllint.notebook import read_notebook

    notebooks = {}
    reported = set()
    for finding in findings:
        path = os.path.abspath(finding.path)
        line = finding.line
        if path.endswith(".ipynb"):
            if path not in notebooks:
                with open(path, encoding="utf-8") as handle:
                    notebooks[path] = read_notebook(handle.read())
            line = notebooks[path].cell_position(finding.line)
        reported.add((path, line, finding.code))
    return reported


@pytest.mark.parametrize("unit", FIXTURE_UNITS, ids=lambda p: os.path.basename(p))
def test_fixture_reports_exactly_its_annotations(unit):
    files = python_files(unit) if os.path.isdir(unit) else [unit]
    expected = set().union(*(expected_findings(f) for f in files))
    codes = [r.code for r in registry.all_rules()]  # opt-in rules (DL509) included: their fixtures count too
    result = lint_paths([unit], codes)
    actual = _reported(result.findings)
    expected = {(os.path.abspath(p), line, code) for p, line, code in expected}
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    messages = {next(iter(_reported([f]))): f.message for f in result.findings}
    assert not missing and not unexpected, (
        f"missing: {missing}\nunexpected: " + "\n".join(f"{u} {messages.get(u)}" for u in unexpected))


def test_there_are_enough_fixtures():
    assert len(FIXTURE_UNITS) >= 30


def _declared(path, label):
    """Codes listed on the `Buggy:` or `Clean near-miss:` line of a fixture's docstring."""
    head = fixture_text(path)[:3000]
    match = re.search(rf"^{label}:(.*)$", head, re.MULTILINE)
    return set(re.findall(r"DL\d{3}", match.group(1))) if match else set()


def _unit_files(unit):
    return python_files(unit) if os.path.isdir(unit) else [unit]


@pytest.mark.parametrize("unit", FIXTURE_UNITS, ids=lambda p: os.path.basename(p))
def test_fixture_docstring_declares_what_it_exercises(unit):
    files = _unit_files(unit)
    annotated = set().union(*({code for _, _, code in expected_findings(f)} for f in files))
    buggy = set().union(*(_declared(f, "Buggy") for f in files))
    clean = set().union(*(_declared(f, "Clean near-miss") for f in files))
    assert buggy == annotated, f"docstring says Buggy: {sorted(buggy)}, annotations say {sorted(annotated)}"
    assert buggy or clean, "a fixture declares the rules it exercises"


def test_every_rule_has_three_buggy_and_three_clean_fixtures():
    buggy_count = collections.Counter()
    clean_count = collections.Counter()
    for unit in FIXTURE_UNITS:
        files = _unit_files(unit)
        buggy_count.update(set().union(*(_declared(f, "Buggy") for f in files)))
        clean_count.update(set().union(*(_declared(f, "Clean near-miss") for f in files)))
    for rule in registry.all_rules():
        if rule.check is None:
            continue
        assert buggy_count[rule.code] >= 3, f"{rule.code}: {buggy_count[rule.code]} buggy fixtures"
        assert clean_count[rule.code] >= 3, f"{rule.code}: {clean_count[rule.code]} clean near-miss fixtures"


def test_linting_the_whole_fixtures_directory_reports_exactly_every_annotation(fixture_findings):
    """The README's first command: packages side by side must not leak facts into each other."""
    expected = set().union(*(expected_findings(f) for f in linted_files(FIXTURES)))
    actual = _reported(fixture_findings)
    assert actual == {(os.path.abspath(p), line, code) for p, line, code in expected}
