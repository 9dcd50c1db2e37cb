"""Reads the `# expect: DL101, DL201` annotations written inside fixture files and notebooks' cells."""

import json
import os
import re
from typing import List, Set, Tuple, Union

_EXPECT = re.compile(r"#\s*expect:\s*((?:DL\d{3}[\s,]*)+)")


def notebook_cells(path: str) -> List[Tuple[int, str, str]]:
    """(cell number among all cells, cell type, text) of a notebook, read with json alone."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    cells = []
    for number, cell in enumerate(document["cells"], start=1):
        source = cell.get("source", "")
        cells.append((number, cell["cell_type"], source if isinstance(source, str) else "".join(source)))
    return cells


def expected_findings(path: str) -> Set[Tuple[str, Union[int, Tuple[int, int]], str]]:
    """{(path, line, code)} annotated in one file; in a notebook the line is (cell, line in cell)."""
    found = set()
    if path.endswith(".ipynb"):
        for cell, kind, text in notebook_cells(path):
            for number, line in enumerate(text.split("\n"), start=1):
                match = _EXPECT.search(line)
                if match and kind == "code":
                    for code in re.findall(r"DL\d{3}", match.group(1)):
                        found.add((os.path.normpath(path), (cell, number), code))
        return found
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            match = _EXPECT.search(line)
            if match:
                for code in re.findall(r"DL\d{3}", match.group(1)):
                    found.add((os.path.normpath(path), number, code))
    return found


def fixture_text(path: str) -> str:
    """What a reader sees of a fixture: a notebook's cells, markdown included, else the file."""
    if path.endswith(".ipynb"):
        return "\n".join(text for _, _, text in notebook_cells(path))
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def linted_files(root: str) -> List[str]:
    """The Python files and notebooks under `root`, as a directory walk lints them."""
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        files.extend(os.path.join(directory, n) for n in sorted(names) if n.endswith((".py", ".ipynb")))
    return files


def python_files(root: str) -> List[str]:
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        files.extend(os.path.join(directory, n) for n in sorted(names) if n.endswith(".py"))
    return files
