"""Files loaded in parts (model/parts.py) give the same facts, positions, findings and fixes as files
parsed whole: the skeleton keeps every position and each function body is built into the same scope."""

import ast
import glob
import os

import libcst as cst
import pytest

from dllint.lines import split_lines
from dllint.model.builder import build_file_facts
from dllint.model.parts import build_in_parts, mentions_word, outline, skeleton
from dllint.positions import span_of
from tests.conftest import FIXTURES

TRICKY = """\
import torch
import torch.nn as nn


def make_optimizer(model):
    import torch.optim as optim
    from torch.nn import functional as F
    return optim.SGD(model.parameters(), lr=0.1)


class Net(nn.Module):
    scale = 2

    def __init__(self):
        super().__init__()
        self.blocks = [nn.Linear(4, 4) for _ in range(3)]
        self.head = nn.Linear(4, 2)

    @torch.no_grad()
    @staticmethod
    def average(xs):
        return sum(xs) / len(xs)

    async def fetch(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x):
        def inner(y):
            return torch.softmax(self.head(y), dim=1)

        class Local(nn.Module):
            def forward(self, z):
                return z.clamp(min=0)

        return inner(Local()(x))


\f
def train(model, loader):
    optimizer = make_optimizer(model)
    criterion = nn.CrossEntropyLoss()
    while True:
        for x, y in loader:
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
        if loss.item() < 0.1:
            break
    model.head = nn.Linear(4, 2)
    return model.head.weight


if __name__ == "__main__":
    train(Net(), [])
"""


def _code(node):
    return None if node is None else cst.Module([]).code_for_node(node)


def _dump(facts):
    """A plain picture of the facts, including every node's position."""

    def where(node):
        return span_of(facts, node)

    scopes = []
    for scope in facts.scopes:
        scopes.append((
            scope.qualname, scope.start, scope.end, scope.params, [_code(d) for d in scope.decorators],
            where(scope.node),
            [(loop.start, loop.end, loop.target_names, loop.under_no_grad, where(loop.node)) for loop in scope.loops],
            [(c.order, c.callee_text, c.no_grad, [loop.start for loop in c.loops], len(c.conditions), where(c.node))
             for c in scope.calls],
            sorted((name, [(d.order, d.kind, _code(d.value), d.unpack_path) for d in defs])
                   for name, defs in scope.definitions.items()),
            [(order, _code(value)) for order, value in scope.returns],
            [(g.order, where(g.node)) for g in scope.grad_clears],
            [(a.order, a.target_text, a.no_grad) for a in scope.aug_assigns],
            [(order, where(node)) for node, _, order in scope.list_repeats],
            [(order, where(node)) for node, order in scope.comprehensions],
            sorted(scope.nested_functions),
            sorted((name, [where(read) for read in reads]) for name, reads in scope.self_attribute_reads.items()),
            sorted(scope.member_reads.items()),
            [(order, where(node)) for node, order in scope.divisions],
            [(name, d.order) for name, d in scope.self_definitions],
        ))
    # A class node of the skeleton ends at its last stub: only its start is compared (no rule reports a class).
    classes = [(c.qualname, c.order, where(c.node)[:2], list(c.methods),
                sorted((name, [(m.qualname, d.order) for m, d in defs]) for name, defs in c.attributes.items()))
               for c in facts.all_class_list]
    return (facts.aliases, sorted(facts.functions), scopes, classes, sorted(facts.foreign_attribute_names),
            len(facts.exiting_branches), [(where(node), name) for node, name, _ in facts.requires_grad_typos])


def _whole_and_parts(source, name="sample.py"):
    whole = build_file_facts(name, "sample", source, cst.parse_module(source))
    parts = build_in_parts(name, "sample", source, ast.parse(source))
    return whole, parts


SOURCES = sorted(glob.glob(os.path.join(FIXTURES, "**", "*.py"), recursive=True))


@pytest.mark.parametrize("path", SOURCES, ids=os.path.basename)
def test_filling_every_part_gives_the_facts_of_a_whole_parse(path):
    with open(path, encoding="utf-8", newline="") as handle:
        source = handle.read()
    whole, parts = _whole_and_parts(source)
    assert parts is not None and parts.parts is not None
    assert _dump(parts.complete()) == _dump(whole)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_decorated_async_nested_and_importing_functions_in_parts(newline):
    source = TRICKY.replace("\n", newline)
    whole, parts = _whole_and_parts(source)
    # The imports inside make_optimizer are known before its body is parsed.
    assert parts.aliases["optim"] == "torch.optim" and parts.aliases["F"] == "torch.nn.functional"
    assert len(parts.parts.pending) == 6  # make_optimizer, the four methods of Net, train
    assert _dump(parts.complete()) == _dump(whole)


def test_only_the_bodies_read_are_parsed():
    whole, parts = _whole_and_parts(TRICKY)
    train = parts.functions["train"]
    assert [call.callee_text for call in train.calls] == [call.callee_text for call in whole.functions["train"].calls]
    filled = [scope.qualname for scope in parts.scopes if id(scope) not in parts.parts.pending]
    assert "Net.forward" not in filled and "make_optimizer" not in filled
    # A class's attribute parses only the methods that can assign it.
    net = parts.classes["Net"]
    assert [(m.name, d.order) for m, d in net.definitions_of("blocks")] == \
        [(m.name, d.order) for m, d in whole.classes["Net"].attributes["blocks"]]
    assert id(net.methods["forward"]) in parts.parts.pending  # it never says "blocks"


def test_the_skeleton_keeps_every_line_and_the_stubs_sit_on_the_def_lines():
    lines = split_lines(TRICKY)
    units = outline(ast.parse(TRICKY), lines)
    text = skeleton(lines, units)
    assert len(split_lines(text)) == len(lines)
    for unit in units:
        assert split_lines(text)[unit.def_line - 1].strip() == f"def {unit.name}(): pass"
    # Everything outside the units is untouched.
    outside = [n for n in range(1, len(lines) + 1) if not any(u.def_line <= n <= u.end_line for u in units)]
    assert [split_lines(text)[n - 1] for n in outside] == [lines[n - 1] for n in outside]


def test_split_lines_breaks_only_where_python_does():
    assert split_lines("a = 1\fb\nc\r\nd\re") == ["a = 1\fb\n", "c\r\n", "d\r", "e"]


def test_a_word_is_mentioned_only_as_a_whole_identifier_within_the_range():
    text = "def step(self):\n    self.stepper.step_size = steps\n\ndef other():\n    optimizer.step()\n"
    assert not mentions_word(text, "stepp") and not mentions_word(text, "timizer")
    assert mentions_word(text, "step") and mentions_word(text, "stepper") and mentions_word(text, "steps")
    second = text.index("def other")
    assert mentions_word(text, "step", second) and not mentions_word(text, "self", second)
    assert not mentions_word(text, "optimizer", 0, second) and not mentions_word(text, "optim", second)


def test_a_one_line_class_body_falls_back_to_a_whole_parse():
    source = "import torch\nclass A(torch.nn.Module): pass\nclass B: x = 1; y = 2\n"
    whole, parts = _whole_and_parts(source)
    assert _dump(parts.complete()) == _dump(whole)


NESTED_CLASSES = """\
import dataclasses

import torch.nn as nn


class Trainer:
    @dataclasses.dataclass
    class Config:
        lr: float = 0.1

        def __post_init__(self):
            import torch
            self.lr = torch.tensor(self.lr)

        class Schedule:
            def step(self, epoch):
                return 0.5 ** epoch

    def __init__(self, model: nn.Module):
        self.model = model
        self.config = Trainer.Config()

    def fit(self, loader):
        for batch in loader:
            self.model(batch).sum().backward()
"""


def test_methods_of_classes_nested_in_classes_are_parts_too():
    # The builder stubs the methods of a class defined in a class body: so must the outline, else
    # the file falls back to a whole parse (torch's largest modules have such dataclasses).
    whole, parts = _whole_and_parts(NESTED_CLASSES)
    assert parts is not None
    assert sorted(scope.name for scope, _ in parts.parts.pending.values()) == \
        ["__init__", "__post_init__", "fit", "step"]
    assert parts.aliases["torch"] == "torch"  # an import inside a nested class's method, known before its body
    assert _dump(parts.complete()) == _dump(whole)


def _lint_fixtures(monkeypatch, mode, jobs=1, paths=None):
    import dllint.engine
    from dllint.discovery import discover
    from dllint.engine import display_path, load_source
    from dllint.registry import all_rules
    from dllint.runner import lint_items

    monkeypatch.setattr(dllint.engine, "LOAD_IN_PARTS", mode)
    files, roots = discover(paths or [FIXTURES], [])
    items = [load_source(path, display_path(path)) for path in files]
    result = lint_items(items, [r.code for r in all_rules()], roots, jobs=jobs, cache=None)
    return [finding.to_dict() for finding in result.findings]


# Multi-file fixture projects: the only fixtures that consult other files, so the only ones whose
# loading of consulted files can change anything.
PACKAGES = sorted(glob.glob(os.path.join(FIXTURES, "pkg_*")))


def _in_packages(findings):
    roots = tuple(os.path.abspath(package) + os.sep for package in PACKAGES)
    return [finding for finding in findings if os.path.abspath(finding["path"]).startswith(roots)]


def test_findings_and_fixes_are_the_same_however_files_are_loaded(monkeypatch, fixture_findings):
    # The default ("consulted": files another file consults are loaded in parts), as a run loads them;
    # the same mode in worker processes is the parallel tests' --jobs runs.
    whole = [finding.to_dict() for finding in fixture_findings]
    assert len(whole) > 100 and sum(finding["fix"] is not None for finding in whole) > 10
    in_packages = _in_packages(whole)
    assert len(in_packages) > 20
    assert _lint_fixtures(monkeypatch, "never", paths=PACKAGES) == in_packages
    # "always" loads even the linted files in parts, so every fix is made from a file loaded in parts.
    assert _lint_fixtures(monkeypatch, "always") == whole


def test_findings_and_fixes_do_not_depend_on_how_many_files_the_store_holds(monkeypatch, fixture_findings):
    # With room for one file, every chunk drops what the previous one parsed and parses it again;
    # the files a chunk is using stay until it ends (its analysis compares their objects). The findings
    # are those of an ordinary run (default chunks and store).
    import dllint.engine
    import dllint.runner

    whole = _in_packages([finding.to_dict() for finding in fixture_findings])
    # Small chunks, so that each package surely spans several of them.
    monkeypatch.setattr(dllint.engine, "CHUNK_FILES", 3)
    monkeypatch.setattr(dllint.runner, "_PARALLEL_THRESHOLD", 10 ** 9)  # in this process, to count parses
    parsed = []
    real_parse_facts = dllint.engine.parse_facts
    monkeypatch.setattr(dllint.engine, "parse_facts", lambda item, *rest: parsed.append(item.path) or
                        real_parse_facts(item, *rest))
    monkeypatch.setattr(dllint.engine, "FACTS_CAPACITY_CHARS", 1)
    for mode in ("never", "consulted"):
        parsed.clear()
        assert _lint_fixtures(monkeypatch, mode, jobs=1, paths=PACKAGES) == whole
        assert len(parsed) > len(set(parsed))  # files were dropped and parsed again


def test_large_linted_files_are_parsed_in_parts_with_the_same_findings(monkeypatch, fixture_findings):
    # A linted file of at least IN_PARTS_FROM_CHARS is parsed in parts and completed (libcst's peak
    # memory is then its largest function's): with a threshold every package file passes, the
    # findings are an ordinary run's.
    import dllint.engine
    import dllint.runner

    whole = _in_packages([finding.to_dict() for finding in fixture_findings])
    monkeypatch.setattr(dllint.runner, "_PARALLEL_THRESHOLD", 10 ** 9)  # in this process, to see the loads
    loaded = []
    real_parse_facts = dllint.engine.parse_facts

    def parse_facts(item, module_name, whole=True):
        facts = real_parse_facts(item, module_name, whole)
        loaded.append((whole, facts is not None and facts.parts is not None))
        return facts
    monkeypatch.setattr(dllint.engine, "parse_facts", parse_facts)
    monkeypatch.setattr(dllint.engine, "IN_PARTS_FROM_CHARS", 1_000)
    assert _lint_fixtures(monkeypatch, "consulted", jobs=1, paths=PACKAGES) == whole
    assert sum(1 for linted, in_parts in loaded if linted and in_parts) > 5


STEP = """\
import torch


def train(model, loader, optimizer):
    for x, y in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
"""


def _step_statement(tree):
    found = []

    class Finder(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node):
            if "optimizer.step" in cst.Module([]).code_for_node(node):
                found.append(node)

    tree.visit(Finder())
    return found[0]


def test_a_fix_that_needs_the_whole_file_is_made_from_the_same_node_parsed_whole():
    from dllint.engine import _edit
    from dllint.fixes import Fix, edit_for

    def two_lines_before(old):
        # Two statements inserted: more than the edit from the node alone handles, so the whole file is needed.
        return cst.FlattenSentinel([cst.parse_statement("optimizer.zero_grad()"), cst.parse_statement("pass"), old])

    whole, parts = _whole_and_parts(STEP)
    old = _step_statement(whole.tree)
    expected = edit_for(whole.tree, STEP, Fix("SAFE", "insert", old, two_lines_before(old)), span_of(whole, old))
    assert expected is not None and expected["edits"][0]["line"] == 8
    parts.functions["train"].calls  # parses the body
    parts_old = _step_statement(parts.parts.segments[0][0])
    assert _edit(parts, Fix("SAFE", "insert", parts_old, two_lines_before(parts_old))) == expected
