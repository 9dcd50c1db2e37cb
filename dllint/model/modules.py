"""Which file an import names: module names of the linted files, and the table that resolves imports.

Kept apart from the project model because the catalogue of a run needs it before anything is parsed
(and a warm run that only reads the cache never imports libcst).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional


class ModuleTable:
    """Finds the file an import names, the way the linted code would: beside the importer first
    (script-style imports), then by full name, then by unique suffix (the linted root may sit
    above or below the package root)."""

    def __init__(self, entries) -> None:
        self.by_module: Dict[str, List[object]] = {}
        self.by_suffix: Dict[str, List[object]] = {}
        for name, entry in entries:
            self.by_module.setdefault(name, []).append(entry)
            parts = name.split(".")
            for start in range(1, len(parts)):
                self.by_suffix.setdefault(".".join(parts[start:]), []).append(entry)

    def _named(self, name: str, importer_path: str):
        """The file of that module name; several roots may each have one (`engine.py`): the importer's
        own directory wins, and an ambiguous name resolves to nothing."""
        found = self.by_module.get(name, [])
        if len(found) > 1:
            directory = os.path.dirname(os.path.abspath(importer_path))
            found = [f for f in found if os.path.dirname(os.path.abspath(f.path)) == directory] or found
        return found[0] if len(found) == 1 else None

    def resolve(self, qualified_module: str, importer: str, importer_path: str):
        if qualified_module.startswith("."):
            level = len(qualified_module) - len(qualified_module.lstrip("."))
            package = importer.split(".") if importer else []
            is_package = os.path.basename(importer_path) == "__init__.py"
            keep = len(package) - (level - 1) - (0 if is_package else 1)
            rest = qualified_module.lstrip(".")
            qualified_module = ".".join(package[:max(keep, 0)] + ([rest] if rest else []))
        package = importer.rpartition(".")[0]
        for candidate in ((f"{package}.{qualified_module}" if package else None), qualified_module):
            found = self._named(candidate, importer_path) if candidate else None
            if found is not None:
                return found
        matches = self.by_suffix.get(qualified_module, [])
        if len(matches) == 1:
            return matches[0]
        parts = qualified_module.split(".")
        for start in range(1, len(parts)):
            found = self._named(".".join(parts[start:]), importer_path)
            if found is not None:
                return found
        return None


def module_name_for(path: str, root: Optional[str]) -> str:
    """`pkg/models/resnet.py` -> `pkg.models.resnet`, relative to the linted root."""
    base = os.path.relpath(path, root) if root else os.path.basename(path)
    if base.startswith(".."):
        base = os.path.basename(path)
    base = os.path.splitext(base)[0]
    parts = [p for p in base.replace(os.sep, "/").split("/") if p not in ("", ".")]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def root_for(path: str, roots) -> Optional[str]:
    """The longest linted root that contains `path`."""
    absolute = os.path.abspath(path)
    best = None
    for root in roots:
        if absolute.startswith(root.rstrip(os.sep) + os.sep) and (best is None or len(root) > len(best)):
            best = root
    return best
