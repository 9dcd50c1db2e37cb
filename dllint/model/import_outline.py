"""What a file imports and what its classes derive from, read from CPython's `ast` (a fraction of
libcst's parse): enough to tell that no call in the file can reach a function of another file,
so that a search for the function's callers need not parse it (see Project.callers)."""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterator, Optional

from dllint.model.torch_api import IMPLICIT_ALIASES

_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


@dataclass(frozen=True)
class ImportOutline:
    # Every qualified name an import anywhere in the file gives a local name (as the builder records
    # it: `from .models import Net as N` gives N -> ".models.Net"), and the implicit ones: a superset
    # of the aliases a parse of the file can hold.
    bindings: Dict[str, FrozenSet[str]]
    # The dotted names (`nn.Module`, `Base`) in the base lists of every class statement of the file.
    class_bases: FrozenSet[str]


def import_outline(source: str) -> Optional[ImportOutline]:
    """The outline of a file's text; None when CPython cannot parse it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, RecursionError, MemoryError, ValueError, OverflowError):
        return None
    bindings: Dict[str, set] = {local: {qualified} for local, qualified in IMPLICIT_ALIASES.items()}
    bases = set()
    for node in block_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".", 1)[0]
                bindings.setdefault(alias.asname or root, set()).add(alias.name if alias.asname else root)
        elif isinstance(node, ast.ImportFrom):
            if all(alias.name != "*" for alias in node.names):
                module = "." * node.level + (node.module or "")
                joiner = "" if module.endswith(".") else "."
                for alias in node.names:
                    qualified = f"{module}{joiner}{alias.name}" if module else alias.name
                    bindings.setdefault(alias.asname or alias.name, set()).add(qualified)
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                dotted = _dotted(base.value if isinstance(base, ast.Starred) else base)
                if dotted is not None:
                    bases.add(dotted)
    return ImportOutline({local: frozenset(names) for local, names in bindings.items()}, frozenset(bases))


def block_statements(root: ast.AST) -> Iterator[ast.AST]:
    """`root` and every statement inside it, reached through blocks of statements only (imports and
    classes are statements: expressions need no look). In no particular order."""
    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        for name in _BLOCK_FIELDS:
            block = getattr(node, name, None)
            if block:
                pending.extend(block)


def _dotted(node: ast.expr) -> Optional[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
