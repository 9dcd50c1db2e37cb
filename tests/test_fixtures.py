"""Every fixture reports exactly the findings annotated in it with `# expect: CODE`."""

import os

import pytest

from dllint import registry
from dllint.engine import lint_paths
from tests.conftest import FIXTURES
from tests.expectations import expected_findings, python_files

# A fixture is a single file or a directory (a multi-file package linted as one project).
FIXTURE_UNITS = sorted(os.path.join(FIXTURES, name) for name in os.listdir(FIXTURES)
                       if name.endswith(".py") or os.path.isdir(os.path.join(FIXTURES, name)))


@pytest.mark.parametrize("unit", FIXTURE_UNITS, ids=lambda p: os.path.basename(p))
def test_fixture_reports_exactly_its_annotations(unit):
    files = python_files(unit) if os.path.isdir(unit) else [unit]
    expected = set().union(*(expected_findings(f) for f in files))
    codes = [r.code for r in registry.all_rules()]
    result = lint_paths([unit], codes)
    actual = {(os.path.normpath(os.path.abspath(f.path)) if not os.path.isabs(f.path) else f.path, f.line, f.code)
              for f in result.findings}
    expected = {(os.path.abspath(p), line, code) for p, line, code in expected}
    missing = sorted(expected - actual)
    unexpected = sorted(actual - expected)
    messages = {(os.path.abspath(f.path), f.line, f.code): f.message for f in result.findings}
    assert not missing and not unexpected, (
        f"missing: {missing}\nunexpected: " + "\n".join(f"{u} {messages.get(u)}" for u in unexpected))


def test_there_are_enough_fixtures():
    assert len(FIXTURE_UNITS) >= 30


def test_every_rule_has_a_buggy_and_a_clean_fixture():
    """Each check's code is annotated somewhere, and each has a clean near-miss naming it in its docstring."""
    annotated = set()
    clean_mentions = set()
    for unit in FIXTURE_UNITS:
        files = python_files(unit) if os.path.isdir(unit) else [unit]
        for path in files:
            annotated |= {code for _, _, code in expected_findings(path)}
            with open(path, encoding="utf-8") as handle:
                head = handle.read(2000)
            if "clean near-miss" in head.lower():
                clean_mentions |= set(__import__("re").findall(r"DL\d{3}", head))
    for rule in registry.all_rules():
        if rule.check is None:
            continue
        assert rule.code in annotated, f"no buggy fixture for {rule.code}"
        assert rule.code in clean_mentions, f"no clean near-miss fixture for {rule.code}"
