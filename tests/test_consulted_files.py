"""A consulted file is parsed only when its text can hold what a query looks for (engine.FactsStore's
text tests): the tests must accept every name the parsed facts hold, or findings would change."""

import glob
import os

import libcst as cst

from dllint.engine import FactsStore, SourceFile, lint_chunk, load_source
from dllint.index.catalogue import build_catalogue
from dllint.model.builder import build_file_facts
from tests.conftest import FIXTURES

SPELLINGS = """\
import torch
from helpers import (scale  # a comment inside the brackets
                     as rescale, clip)


async def fetch(batch):
    return batch


class Net(torch.nn.Module):
    def forward(self, x):
        y = (clip)(x)
        z = self.norm \\
            (y)
        w = rescale(z) + other.\\
            weight
        return (w.  # a comment
                bias)
"""


def _store(sources):
    items = [SourceFile(path, path, source=text) for path, text in sources.items()]
    catalogue = build_catalogue(items, [])
    return catalogue, FactsStore(catalogue)


def test_text_tests_accept_the_spellings_python_allows():
    catalogue, store = _store({"net.py": SPELLINGS})
    assert store.may_define(0, "fetch") and store.may_define(0, "Net")
    assert store.may_call(0, "clip")  # (clip)(x)
    assert store.may_call(0, "norm")  # self.norm \ (y)
    assert store.may_call(0, "scale")  # imported as rescale, called as rescale(z)
    assert store.may_read_attribute(0, "weight") and store.may_read_attribute(0, "bias")
    # What the text cannot hold, it does not claim.
    assert not store.may_define(0, "forward_fn") and not store.may_define(0, "clip")
    assert not store.may_call(0, "batch") and not store.may_call(0, "Module")
    assert not store.may_read_attribute(0, "clip")


def test_text_tests_accept_every_name_the_facts_of_the_fixtures_hold():
    paths = sorted(glob.glob(os.path.join(FIXTURES, "**", "*.py"), recursive=True))
    items = [load_source(path, path) for path in paths]
    catalogue = build_catalogue(items, [])
    store = FactsStore(catalogue)
    checked = 0
    for index, item in enumerate(catalogue.items):
        try:
            facts = build_file_facts(item.path, "m", item.source, cst.parse_module(item.source))
        except (cst.ParserSyntaxError, RecursionError):
            continue
        for name in list(facts.classes) + list(facts.functions):
            assert store.may_define(index, name), (item.path, name)
        for scope in facts.scopes:
            for call in scope.calls:
                func = call.node.func
                name = func.value if isinstance(func, cst.Name) else \
                    func.attr.value if isinstance(func, cst.Attribute) else None
                if name is not None:
                    # A call spelled through an import alias is found under the imported name too.
                    imported = [q.rpartition(".")[2] for local, q in facts.aliases.items() if local == name]
                    assert any(store.may_call(index, n) for n in [name] + imported), (item.path, name)
                    checked += 1
        for attribute in facts.foreign_attribute_names:
            assert store.may_read_attribute(index, attribute), (item.path, attribute)
    assert checked > 1000


def test_a_name_the_imported_module_does_not_define_parses_nothing_more():
    models = "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"
    train = ("import torch\nfrom models import Net, build\n\n\ndef main():\n    model = build()\n"
             "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n    optimizer.step()\n")
    catalogue, store = _store({"models.py": models, "train.py": train})
    lint_chunk(catalogue, store, [1], ["DL101", "DL201"])
    assert store.parsed == 1  # `build` is not defined in models.py: its lookup needs no parse
    catalogue, store = _store({"models.py": models, "train.py": train.replace("build()", "Net()")})
    lint_chunk(catalogue, store, [1], ["DL101", "DL201"])
    assert store.parsed == 2


# A search for a function's callers parses only the importers whose imports and class bases let a
# call reach it (Project._may_reach). Each file below reaches the target its name says, in a way
# the test must not miss; `unrelated.py` imports the same file, spells the same names, and cannot.
CALLER_PROJECT = {
    "base.py": (
        "import torch\nfrom torch import nn\n\n\n"
        "class Base(nn.Module):\n    def __init__(self, dim):\n        super().__init__()\n        self.dim = dim\n\n"
        "    def step(self, x):\n        return x * self.dim\n\n\n"
        "def helper(x):\n    def inner(y):\n        return y\n    return inner(x)\n\n\nSCALE = 2\n"
    ),
    "sub.py": "import torch\nfrom base import Base\n\n\nclass Mid(Base):\n    pass\n",
    # the method through a class of another file: Leaf -> sub.Mid -> base.Base
    "leaf_method.py": (
        "import torch\nimport base\nfrom sub import Mid\n\n\n"
        "class Leaf(Mid):\n    def run(self, x):\n        return self.step(x)\n"
    ),
    "alias_module.py": "import torch\nimport base as b\n\n\ndef go(x):\n    return b.helper(x)\n",
    "alias_name.py": (
        "import torch\n\n\ndef go(x):\n    from base import helper as assist\n    return assist(x)\n"
    ),
    # a class of the same name that inherits the target's __init__
    "same_name.py": (
        "import torch\nimport base\n\n\nclass Base(base.Base):\n    pass\n\n\ndef build():\n    return Base(4)\n"
    ),
    # ... defined in another file, or here through a class of another file
    "wrapped.py": "import torch\nimport base\n\n\nclass Base(base.Base):\n    pass\n",
    "inherit_elsewhere.py": "import torch\nfrom base import SCALE\nfrom wrapped import Base\n\nnet = Base(SCALE)\n",
    "local_subclass.py": (
        "import torch\nfrom base import SCALE\nfrom sub import Mid\n\n\nclass Base(Mid):\n    pass\n\n\n"
        "net = Base(SCALE)\n"
    ),
    "unrelated.py": (
        "import torch\nfrom base import SCALE\n\nBase = dict\n\n\n"
        "class Trainer:\n    def step(self, x):\n        return x\n\n    def run(self, optimizer):\n"
        "        optimizer.step()\n        self.step(1)\n        inner(2)\n        return helper(Base(scale=SCALE))\n\n\n"
        "def helper(x):\n    return x\n\n\ndef inner(y):\n    return y\n"
    ),
}


def _project(sources):
    from dllint.model.project import Project

    catalogue, store = _store(sources)
    return catalogue, store, Project(catalogue, store)


def test_callers_in_importers_are_found_through_imports_aliases_and_bases():
    catalogue, store, project = _project(CALLER_PROJECT)
    index = {item.path: n for n, item in enumerate(catalogue.items)}
    base = project.load(index["base.py"], whole=True)
    helper, inner = base.functions["helper"], base.functions["helper"].nested_functions["inner"]
    init, step = base.classes["Base"].methods["__init__"], base.classes["Base"].methods["step"]
    expected = {init: {"same_name.py", "inherit_elsewhere.py", "local_subclass.py"}, step: {"leaf_method.py"}, helper: {"alias_module.py", "alias_name.py"},
                inner: {"base.py"}}
    for target, files in expected.items():
        assert {call.scope.file.path for call in project.callers(target)} == files, target.name
    unrelated = index["unrelated.py"]
    for target in (init, step, helper, inner):
        name = "Base" if target is init else target.name
        assert store.may_call(unrelated, name)  # its text alone would not rule it out
        assert not project._may_reach(unrelated, target, name)
    assert unrelated not in store._held  # never parsed


def test_every_call_the_fixtures_resolve_into_another_file_passes_the_importer_test():
    from dllint.model.facts import ClassFacts, Scope
    from dllint.model.project import Project

    paths = sorted(glob.glob(os.path.join(FIXTURES, "**", "*.py"), recursive=True))
    items = [load_source(path, path) for path in paths]
    catalogue = build_catalogue(items, [FIXTURES])
    store = FactsStore(catalogue, own=catalogue.analysed)
    checked = 0
    for index in catalogue.analysed:
        project = Project(catalogue, store)
        facts = project.load(index, whole=True)
        if facts is None:
            continue
        for scope in facts.scopes:
            for call in scope.calls:
                callee = project.callee(call)
                if isinstance(callee, ClassFacts):
                    callee = project.method_of(callee, "__init__")
                if isinstance(callee, Scope) and callee.file.index != index:
                    name = callee.cls.name if callee.name == "__init__" and callee.cls is not None else callee.name
                    assert project._may_reach(index, callee, name), (facts.path, call.callee_text)
                    checked += 1
        store.clear()
    assert checked > 50
