"""What a check receives: the file under check, the project, the shared analysis, and a way to report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

import libcst as cst

from dllint.fixes import Fix
from dllint.model.facts import FileFacts
from dllint.model.flow import Analysis, Source
from dllint.model.project import Project


_TEST_FOLDERS = {"tests", "test"}


@dataclass(frozen=True)
class Report:
    """A finding before positions are known: a node of some file and a message."""

    code: str
    file: FileFacts
    node: cst.CSTNode
    message: str
    fix: Optional[Fix] = None


class CheckContext:
    def __init__(self, file: FileFacts, analysis: Analysis, code: str) -> None:
        self.file = file
        self.analysis = analysis
        self.project: Project = analysis.project
        self.code = code
        self.reports: List[Report] = []

    @property
    def scopes(self):
        return self.file.scopes

    @property
    def in_test_file(self) -> bool:
        """Test code (test_*.py, *_test.py, conftest.py, or under a tests/ folder): it builds odd modules
        and calls their methods on purpose."""
        name = os.path.basename(self.file.path)
        # Folders from the module name, relative to the import root: a checkout under ~/test/ is not test code.
        folders = self.file.module_name.split(".")[:-1]
        return name.startswith("test_") and name.endswith(".py") or name.endswith("_test.py") or \
            name == "conftest.py" or bool(_TEST_FOLDERS.intersection(folders))

    @property
    def in_test_module(self) -> bool:
        """A test file itself (test_*.py, *_test.py, conftest.py), not a helper module under tests/: its
        models exist for the test next to them. Shared helper models (tests/helpers/simple_models.py) are
        trained by tests that assert accuracy, so their training quality matters."""
        name = os.path.basename(self.file.path)
        return name.startswith("test_") and name.endswith(".py") or name.endswith("_test.py") or name == "conftest.py"

    def report(self, node: cst.CSTNode, message: str, file: Optional[FileFacts] = None,
               fix: Optional[Fix] = None) -> None:
        """Report at `node`, which lies in this file unless another file is named."""
        self.reports.append(Report(self.code, file or self.file, node, message, fix))

    def line(self, node: cst.CSTNode, file: Optional[FileFacts] = None) -> int:
        from dllint.positions import line_of

        return line_of(file or self.file, node)

    def location(self, node: cst.CSTNode, file: Optional[FileFacts] = None) -> str:
        """`line 42` in this file, `models.py:42` in another (`cell 3, line 4` in a notebook), for naming
        related places in messages."""
        facts = file or self.file
        line = self.line(node, facts)
        notebook = self._notebook_of(facts)
        if notebook is not None:
            where = notebook.describe_line(line)
            return where if facts is self.file else f"{os.path.basename(facts.path)} {where}"
        if facts is self.file:
            return f"line {line}"
        return f"{os.path.basename(facts.path)}:{line}"

    def _notebook_of(self, facts: FileFacts):
        """The notebook `facts` were joined from: its lines are named by cell."""
        index = getattr(facts, "index", None)
        items = self.project.catalogue.items
        return items[index].notebook if index is not None and 0 <= index < len(items) else None

    def describe_source(self, source: "Source") -> str:
        """`softmax (line 12)` or `the softmax that model Net returns (models.py:42)`: a noun phrase, so
        that every message that names a source stays one sentence."""
        where = self.location(source.node, source.scope.file if source.scope else None)
        if source.model_class is not None:
            return f"the {source.kind} that model {source.model_class.name} returns ({where})"
        return f"{source.kind} ({where})"


def scope_source(facts: FileFacts, scope) -> str:
    """The source text of a function (or the whole module)."""
    from dllint.positions import tree_of

    return facts.source if isinstance(scope.node, cst.Module) else tree_of(facts, scope.node)[0].code_for_node(scope.node)
