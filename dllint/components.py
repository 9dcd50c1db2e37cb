"""Splits a run into independent groups of files: the connected components of the import graph.

Cross-file facts (a model class, a helper's body, a function's callers) only travel along
imports, so each component is a complete project on its own. Components are the unit of
caching and of parallel work, which keeps the output identical whatever the number of jobs.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Set, Tuple

from dllint.engine import SourceFile, mentions_torch
from dllint.model.project import ModuleTable, module_name_for, root_for

_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.MULTILINE)
_DEFINITION = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.MULTILINE)


def imports(source: str) -> List[Tuple[str, List[str]]]:
    """(module, imported names) pairs: `from .models import Net` gives (".models", ["Net"]),
    `import models` gives ("models", [])."""
    found: List[Tuple[str, List[str]]] = []
    for match in _FROM_IMPORT.finditer(source):
        names = [n.split(" as ")[0].strip() for n in match.group(2).strip("()").replace("\\", " ").split(",")]
        found.append((match.group(1), [n for n in names if n and n != "*"]))
    for match in _PLAIN_IMPORT.finditer(source):
        found.extend((part.split(" as ")[0].strip(), []) for part in match.group(1).split(",") if part.strip())
    return found


def defined_names(source: str) -> Set[str]:
    """Top-level classes and functions: the only things other files can learn facts about."""
    return set(_DEFINITION.findall(source))


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

    defined = {id(i): defined_names(i.source or "") for i in analysed}
    for item in analysed:
        importer = names[id(item)]
        for module, imported in imports(item.source or ""):
            # A link matters only when it reaches a file that defines what is imported; package
            # __init__ files that merely re-export would otherwise glue everything together.
            targets = []
            target = table.resolve(module, importer, item.path)
            if target is not None and (not imported or defined[id(target)] & set(imported)):
                targets.append(target)
            joiner = "" if module.endswith(".") else "."
            for name in imported:
                submodule = table.resolve(f"{module}{joiner}{name}", importer, item.path)
                if submodule is not None:
                    targets.append(submodule)
            for target in targets:
                if target is not item and defined[id(target)]:
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
