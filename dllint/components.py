"""Splits a run into independent groups of files: the connected components of the import graph.

Cross-file facts (a model class, a helper's body, a function's callers) only travel along
imports, so each component is a complete project on its own. Components are the unit of
caching and of parallel work, which keeps the output identical whatever the number of jobs.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence

from dllint.engine import SourceFile, mentions_torch
from dllint.model.project import ModuleTable, module_name_for, root_for

_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?([\w, \t.]*)|import[ \t]+([\w., \t]+))",
                     re.MULTILINE)


def imported_modules(source: str) -> List[str]:
    """Module names a file imports (`from .models import Net` gives `.models` and `.models.Net`)."""
    found: List[str] = []
    for match in _IMPORT.finditer(source):
        module, names, plain = match.groups()
        if plain is not None:
            found.extend(part.split(" as ")[0].strip() for part in plain.split(","))
        elif module is not None:
            found.append(module)
            joiner = "" if module.endswith(".") else "."
            found.extend(f"{module}{joiner}{name.split(' as ')[0].strip()}" for name in names.split(",")
                         if name.strip())
    return [name for name in found if name]


def components(items: Sequence[SourceFile], roots: Sequence[str]) -> List[List[SourceFile]]:
    """Groups of items that must be analysed together, in a deterministic order."""
    analysed = [i for i in items if i.error is None and i.source is not None and not i.too_large
                and mentions_torch(i.source)]
    names = {id(i): module_name_for(i.path, root_for(i.path, roots)) for i in analysed}
    table = ModuleTable([(names[id(i)], i) for i in analysed])
    parent: Dict[int, int] = {id(i): id(i) for i in analysed}

    def find(key: int) -> int:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for item in analysed:
        for module in imported_modules(item.source or ""):
            target = table.resolve(module, names[id(item)], item.path)
            if target is not None and target is not item:
                parent[find(id(item))] = find(id(target))
    groups: Dict[int, List[SourceFile]] = {}
    for item in analysed:
        groups.setdefault(find(id(item)), []).append(item)
    result = list(groups.values())
    # Files that are not analysed (parse errors, no torch) are checked alone.
    result.extend([i] for i in items if not any(i is a for a in analysed))
    for group in result:
        group.sort(key=lambda i: i.path)
    result.sort(key=lambda group: group[0].path)
    return result
