"""The rule pages (rules/DL101.md), shipped inside the package as dllint/pages/."""

from __future__ import annotations

import os
from typing import Optional

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def pages_directory() -> Optional[str]:
    for candidate in (os.path.join(_PACKAGE_DIR, "pages"), os.path.join(os.path.dirname(_PACKAGE_DIR), "rules")):
        if os.path.isdir(candidate):
            return candidate
    return None


def read_page(code: str) -> Optional[str]:
    directory = pages_directory()
    if directory is None:
        return None
    path = os.path.join(directory, f"{code}.md")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()
