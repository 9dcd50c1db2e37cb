"""Reads the `# expect: DL101, DL201` annotations written inside fixture files."""

import os
import re
from typing import List, Set, Tuple

_EXPECT = re.compile(r"#\s*expect:\s*((?:DL\d{3}[\s,]*)+)")


def expected_findings(path: str) -> Set[Tuple[str, int, str]]:
    """{(path, line, code)} annotated in one file."""
    found = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            match = _EXPECT.search(line)
            if match:
                for code in re.findall(r"DL\d{3}", match.group(1)):
                    found.add((os.path.normpath(path), number, code))
    return found


def python_files(root: str) -> List[str]:
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        files.extend(os.path.join(directory, n) for n in sorted(names) if n.endswith(".py"))
    return files
