"""Project.qualify remembers its answers by node: the same expression gets the same answer, and a
node asked about with another file's facts gets that file's answer."""

import libcst as cst

from dllint.model.builder import build_file_facts
from dllint.model.project import Project


def _facts(name, source):
    return build_file_facts(name, name[:-3], source, cst.parse_module(source))


def test_remembered_answers_follow_each_files_imports():
    first = _facts("a.py", "import torch.nn.functional as F\nF.softmax(x)\n")
    second = _facts("b.py", "from mylib import helpers as F\nF.softmax(x)\n")
    project = Project.__new__(Project)
    project._qualified = {}
    call = first.tree.body[1].body[0].value
    assert project.qualify(call.func, first) == "torch.nn.functional.softmax"
    assert project.qualify(call.func, first) == "torch.nn.functional.softmax"
    # The same node read with the other file's imports (a node's answer is per file).
    assert project.qualify(call.func, second) == "mylib.helpers.softmax"
    assert project.qualify(call.func, first) == "torch.nn.functional.softmax"
    # Separate nodes of the same text are separate entries, each with its own answer.
    for name in ("F", "x", "F"):
        assert project.qualify(cst.Name(name), first) == ("torch.nn.functional" if name == "F" else None)
    assert project.qualify(None, first) is None
