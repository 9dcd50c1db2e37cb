"""Every rule has a page, every page a rule, and the page's examples are true."""

import os
import re

import pytest

from dllint import registry
from dllint.engine import load_source
from dllint.runner import lint_sources
from dllint.suppressions import apply_suppressions
from tests.conftest import RULES

_BLOCK = re.compile(r"```python (bad|good)\n(.*?)```", re.DOTALL)
RULE_CODES = [r.code for r in registry.all_rules()]


def _page(code):
    with open(os.path.join(RULES, f"{code}.md"), encoding="utf-8") as handle:
        return handle.read()


def _lint_snippet(code_text, name):
    loaded = load_source(name, name, code_text.encode("utf-8"))
    findings = lint_sources([loaded], RULE_CODES).findings
    # Suppression comments apply as on the command line, with unused ones reported (DL998).
    return apply_suppressions(findings, {name: loaded.source}, RULE_CODES, warn_unused=True).findings


def test_every_rule_has_a_page_and_every_page_a_rule():
    pages = {os.path.splitext(n)[0] for n in os.listdir(RULES) if n.endswith(".md")}
    assert pages == set(RULE_CODES)


def test_every_rule_of_the_table_has_exactly_one_check():
    engine_codes = {registry.PARSE_ERROR.code, registry.UNUSED_SUPPRESSION.code, registry.INTERNAL_ERROR.code}
    checked = {r.code for r in registry.all_rules() if r.check is not None}
    assert checked == set(RULE_CODES) - engine_codes and len(checked) >= 27


@pytest.mark.parametrize("code", RULE_CODES)
def test_page_header_matches_the_rule(code):
    info = registry.get_rule(code).info
    page = _page(code)
    assert page.splitlines()[0] == f"# {code}: {info.name}"
    assert f"**Severity:** {info.severity}" in page
    assert f"**Summary:** {info.summary}" in page
    # An opt-in rule says so, and how to select it, right under its header; a default rule does not.
    assert ("**Opt-in:**" in page) == (not info.default)
    if not info.default:
        assert f"--select {code}" in page and f'extend-select = ["{code}"]' in page
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix"):
        assert section in page, f"{code} page lacks {section}"


@pytest.mark.parametrize("code", [c for c in RULE_CODES if c not in ("DL999",)])
def test_bad_examples_report_the_rule_and_good_ones_nothing(code):
    blocks = _BLOCK.findall(_page(code))
    assert any(kind == "bad" for kind, _ in blocks), f"{code} page has no ```python bad block"
    assert any(kind == "good" for kind, _ in blocks), f"{code} page has no ```python good block"
    for index, (kind, text) in enumerate(blocks):
        findings = _lint_snippet(text, f"{code}_{kind}_{index}.py")
        codes = {f.code for f in findings}
        if kind == "bad":
            assert code in codes, f"{code} bad example #{index} is not reported: {findings}"
        else:
            assert not findings, f"{code} good example #{index} reports {findings}"


def test_the_readme_rule_table_lists_every_rule_as_the_registry_has_it():
    """Code, name, severity, default or opt-in selection and summary, one row per rule."""
    with open(os.path.join(os.path.dirname(RULES), "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    rows = re.findall(r"^\| \[(DL\d{3})\]\(rules/\1\.md\) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| (.+) \|$", readme,
                      re.MULTILINE)
    assert [row[0] for row in rows] == RULE_CODES
    for code, name, severity, selection, summary in rows:
        info = registry.get_rule(code).info
        assert (name, severity, selection, summary) == \
            (info.name, info.severity, "default" if info.default else "opt-in", info.summary), code
