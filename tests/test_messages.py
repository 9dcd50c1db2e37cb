"""Every finding's message is one grammatical sentence: what is wrong, then what to do.

All fixtures are linted with every rule; each message must start with a capital letter or with code
(a backticked span, a call, a dotted or quoted name, or an identifier of the linted file), hold no
second sentence, no doubled word and no dangling clause, and end with a period. Code, file names,
positions and numbers are masked first: `__init__()` or `models.py:42` is not a sentence boundary.
"""

import ast
import functools
import json
import os
import re

import pytest

from dllint import registry
from dllint.config import ENGINE_CODES
from dllint.notebook import read_notebook
from tests.invoke import invoke

# Spans that are code or positions, not prose: masked before the grammar is looked at.
_CODE_SPANS = [
    re.compile(r"`[^`]*`"),  # backticked code
    re.compile(r"'[^']*'|\"[^\"]*\""),  # quoted names
    re.compile(r"[\w./-]+\.(?:py|ipynb)(?::\d+)?"),  # file names and file:line references
    re.compile(r"\be\.g\.|\bi\.e\.|\betc\."),  # abbreviations that end in a dot
    # dotted names and calls: nn.Module.__call__, model.eval(), F.dropout(...), x.view(b, c, h, w)
    re.compile(r"\.?[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?(?:\.[A-Za-z_][\w]*"
               r"(?:\([^()]*\))?)*"),
    re.compile(r"\d+(?:\.\d+)?"),  # numbers, decimals included
]


def _masked(message):
    """The message with code, positions and numbers replaced by `X` and parentheses emptied."""
    text = message
    for pattern in _CODE_SPANS[:4]:
        text = pattern.sub(lambda m: "X" * len(m.group(0)), text)
    # Dotted names and calls only when they really are code (hold a dot, a parenthesis or an underscore).
    text = _CODE_SPANS[4].sub(lambda m: "X" * len(m.group(0)) if re.search(r"[._(]", m.group(0)) else m.group(0),
                              text)
    text = _CODE_SPANS[5].sub(lambda m: "X" * len(m.group(0)), text)
    while True:  # innermost parenthesised asides, repeatedly
        emptied = re.sub(r"\([^()]*\)", lambda m: "(" + " " * (len(m.group(0)) - 2) + ")", text)
        if emptied == text:
            return text
        text = emptied


@functools.lru_cache(maxsize=None)
def _identifiers(path):
    """Every name the linted file's code binds or reads (comments and strings excluded)."""
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    if path.endswith(".ipynb"):
        source = read_notebook(source).code  # the code cells joined, IPython syntax masked
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return frozenset(names)


def sentence_problems(message, identifiers=frozenset()):
    """What keeps `message` from being one sentence; empty when it is one."""
    problems = []
    first = message.split(" ", 1)[0]
    starts_with_code = first.startswith(("`", "'", '"', "[")) or bool(re.search(r"[._(]", first)) or \
        first in identifiers
    if not (message[:1].isupper() or starts_with_code):
        problems.append("does not start with a capital letter or with code")
    if not message.endswith("."):
        problems.append("does not end with a period")
    if "\n" in message:
        problems.append("spans several lines")
    masked = _masked(message)
    inner = masked[:-1]
    if re.search(r"[.!?]\s+[A-Z]", inner) or re.search(r"[.!?]\s*$", inner.rstrip(")")):
        problems.append("holds more than one sentence")
    doubled = re.search(r"\b([A-Za-z]+)\s+\1\b", masked, re.IGNORECASE)
    if doubled:
        problems.append(f"doubles {doubled.group(1)!r}")
    # The old DL201 shape: "receives probabilities from model Net (line 16) returns softmax but ..."
    if re.search(r"\bfrom (?:the )?model \S+ \([^)]*\) (?:returns|gives|outputs)\b", message):
        problems.append("a clause dangles after the position")
    if re.search(r"\s[,;:.]", masked) or re.search(r"[,;:]{2}|\.\.(?!\.)", masked):
        problems.append("stray punctuation")
    return problems


@pytest.mark.parametrize("message", [
    "The optimizer is rebuilt on every iteration; create it once before the loop.",
    "`__init__()` is never called on Net, so its layers are not registered; call super().__init__() first.",
    "self.layers holds submodules in a plain list, so they are not registered; wrap it in nn.ModuleList.",
    "Cross-entropy receives probabilities from the softmax that model Net returns (models.py:42); pass logits.",
    "Softmax over dim=0 (e.g. nn.Softmax(dim=0)) normalizes across the batch; use dim=1.",
    "model runs in evaluation code; call model.eval() first.",
])
def test_the_sentence_check_accepts_one_sentence_with_code_in_it(message):
    assert sentence_problems(message, frozenset({"model"})) == []


@pytest.mark.parametrize("message, problem", [
    ("the optimizer is rebuilt; create it once.", "does not start with a capital letter or with code"),
    ("The optimizer is rebuilt; create it once", "does not end with a period"),
    ("The optimizer is rebuilt. Create it once before the loop.", "holds more than one sentence"),
    ("The optimizer is is rebuilt; create it once.", "doubles 'is'"),
    ("Cross-entropy receives probabilities from model Net (line 16) returns softmax but applies log_softmax.",
     "a clause dangles after the position"),
    ("The optimizer is rebuilt ; create it once.", "stray punctuation"),
    ("model runs in evaluation code; call model.eval() first.", "does not start with a capital letter or with code"),
])
def test_the_sentence_check_rejects_what_is_not_one_sentence(message, problem):
    assert problem in sentence_problems(message)


def test_every_message_of_every_rule_on_the_fixtures_is_one_sentence(fixture_findings):
    bad = []
    for finding in fixture_findings:
        problems = sentence_problems(finding.message, _identifiers(os.path.abspath(finding.path)))
        if problems:
            bad.append(f"{finding.code} {os.path.basename(finding.path)}:{finding.line}: {'; '.join(problems)}"
                       f"\n    {finding.message}")
    assert not bad, "\n".join(bad)


def test_every_rule_with_a_check_has_a_finding_on_the_fixtures(fixture_findings):
    """So the sentence check above reads every rule's messages; the engine's own codes (a parse error,
    an unused suppression, a crashed rule) have no check and are exercised by their own tests."""
    reported = {finding.code for finding in fixture_findings}
    checked = {rule.code for rule in registry.all_rules() if rule.code not in ENGINE_CODES}
    assert checked - reported == set()


STALE_SUPPRESSIONS = """\
# dllint: ignore-file[DL990]
import torch
import torch.nn.functional as F


def train(model, loader, optimizer):
    for images, labels in loader:  # dllint: ignore
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)  # noqa: DL201
        loss.backward()
        optimizer.step()  # dllint: ignore[DL101, DL990]
        print(loss.item())  # noqa: DL104, E501
"""


def test_unused_suppression_messages_are_one_sentence_too(tmp_path):
    """DL998's messages are the engine's own, worded like the rules' (every shape of a stale comment)."""
    (tmp_path / "train.py").write_text(STALE_SUPPRESSIONS)
    result = invoke("--warn-unused-suppressions", "--format", "json", "--no-cache", "train.py", cwd=tmp_path)
    messages = [f["message"] for f in json.loads(result.stdout) if f["code"] == "DL998"]
    assert len(messages) == 5
    assert {message: sentence_problems(message) for message in messages} == dict.fromkeys(messages, [])
