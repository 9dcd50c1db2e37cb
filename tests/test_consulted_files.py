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
