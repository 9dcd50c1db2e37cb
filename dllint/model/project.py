"""The project index: joins the facts of all files so names resolve across modules."""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Union

import libcst as cst

from dllint.model.builder import dotted_name
from dllint.model.facts import CallSite, ClassFacts, FileFacts, Scope

Target = Union[Scope, ClassFacts]


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


def alias_for(facts: FileFacts, qualified: str) -> Optional[str]:
    """How a file spells an imported module: `nn` for torch.nn after `from torch import nn`."""
    for local, target in facts.aliases.items():
        if target == qualified:
            return local
    parent, _, last = qualified.rpartition(".")
    if parent:
        spelled = alias_for(facts, parent)
        if spelled is not None:
            return f"{spelled}.{last}"
    return None


class Project:
    """All files linted together. A single file is a project of one."""

    def __init__(self, files: Iterable[FileFacts]) -> None:
        self.files: List[FileFacts] = list(files)
        self._classes_by_name: Dict[str, List[ClassFacts]] = {}
        self._functions_by_name: Dict[str, List[Scope]] = {}
        for facts in self.files:
            for cls in facts.classes.values():
                self._classes_by_name.setdefault(cls.name, []).append(cls)
            for name, scope in facts.functions.items():
                self._functions_by_name.setdefault(name, []).append(scope)
        self.modules = ModuleTable([(f.module_name, f) for f in self.files])
        self._callers: Optional[Dict[int, List[CallSite]]] = None
        self._subclasses: Optional[Dict[int, List[ClassFacts]]] = None
        self._foreign_attributes: Optional[set] = None
        self._callee_cache: Dict[int, Optional[Target]] = {}

    # -- names -------------------------------------------------------------------
    def qualify(self, expr: Optional[cst.CSTNode], facts: FileFacts) -> Optional[str]:
        """The import-resolved name of `expr`: `F.softmax` -> `torch.nn.functional.softmax`."""
        text = dotted_name(expr)
        if text is None:
            return None
        head, _, rest = text.partition(".")
        qualified = facts.aliases.get(head)
        if qualified is None:
            return None
        return f"{qualified}.{rest}" if rest else qualified

    def _module_for(self, qualified_module: str, facts: FileFacts) -> Optional[FileFacts]:
        return self.modules.resolve(qualified_module, facts.module_name, facts.path)

    def lookup(self, qualified: str, facts: FileFacts) -> Optional[Target]:
        """A class or top-level function of the project by its import-qualified name."""
        module, _, name = qualified.rpartition(".")
        if not name:
            return None
        if module in ("", "."):
            target_file: Optional[FileFacts] = facts if module == "" else self._module_for(".", facts)
        else:
            target_file = self._module_for(module, facts)
        if target_file is not None:
            return target_file.classes.get(name) or target_file.functions.get(name)
        return None

    def resolve_name(self, expr: cst.BaseExpression, facts: FileFacts) -> Optional[Target]:
        """A project class or function that `expr` (a Name or module.attr) refers to."""
        if isinstance(expr, cst.Name):
            local = facts.classes.get(expr.value) or facts.functions.get(expr.value)
            if local is not None and expr.value not in facts.aliases:
                return local
        qualified = self.qualify(expr, facts)
        if qualified is not None:
            return self.lookup(qualified, facts)
        return None

    def class_named(self, name: str) -> Optional[ClassFacts]:
        found = self._classes_by_name.get(name, [])
        return found[0] if len(found) == 1 else None

    def base_classes(self, cls: ClassFacts) -> List[ClassFacts]:
        bases = []
        for base in cls.bases:
            target = self.resolve_name(base, cls.file)
            if isinstance(target, ClassFacts) and target is not cls:
                bases.append(target)
        return bases

    def method_of(self, cls: ClassFacts, name: str, _depth: int = 0) -> Optional[Scope]:
        if name in cls.methods:
            return cls.methods[name]
        if _depth > 5:
            return None
        for base in self.base_classes(cls):
            found = self.method_of(base, name, _depth + 1)
            if found is not None:
                return found
        return None

    def subclasses(self, cls: ClassFacts) -> List[ClassFacts]:
        """Project classes that name `cls` as a direct base."""
        if self._subclasses is None:
            index: Dict[int, List[ClassFacts]] = {}
            for facts in self.files:
                for other in facts.all_class_list:
                    for base in self.base_classes(other):
                        index.setdefault(id(base), []).append(other)
            self._subclasses = index
        return self._subclasses.get(id(cls), [])

    @property
    def foreign_attribute_names(self) -> set:
        """Attribute names read on objects other than `self`, anywhere in the project."""
        if self._foreign_attributes is None:
            self._foreign_attributes = set().union(*(f.foreign_attribute_names for f in self.files))
        return self._foreign_attributes

    # -- calls -------------------------------------------------------------------
    def callee(self, call: CallSite) -> Optional[Target]:
        """The project function, method or class a call site invokes, when it is known."""
        key = id(call)
        if key in self._callee_cache:
            return self._callee_cache[key]
        result: Optional[Target] = None
        func = call.node.func
        scope = call.scope
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            self_name = _instance_name(scope)
            if self_name is not None and func.value.value == self_name and scope.cls is not None:
                result = self.method_of(scope.cls, func.attr.value)
            elif func.value.value == "super" or func.value.value in scope.file.aliases:
                result = self.resolve_name(func, scope.file) if func.value.value != "super" else None
        elif isinstance(func, cst.Name):
            result = self._resolve_local_callable(func.value, scope)
        self._callee_cache[key] = result
        return result

    def _resolve_local_callable(self, name: str, scope: Scope) -> Optional[Target]:
        # A name bound by assignment in this scope is a variable, not the function.
        walk: Optional[Scope] = scope
        while walk is not None:
            if name in walk.nested_functions:
                return walk.nested_functions[name]
            if walk.parent is not None and name in walk.definitions:
                return None
            walk = walk.parent
        return self.resolve_name(cst.Name(name), scope.file)

    def callers(self, target: Scope) -> List[CallSite]:
        """Call sites in the whole project that invoke `target` (a function or `__init__`)."""
        if self._callers is None:
            index: Dict[int, List[CallSite]] = {}
            for facts in self.files:
                for scope in facts.scopes:
                    for call in scope.calls:
                        callee = self.callee(call)
                        if isinstance(callee, ClassFacts):
                            callee = self.method_of(callee, "__init__")
                        if callee is not None:
                            index.setdefault(id(callee), []).append(call)
            self._callers = index
        return self._callers.get(id(target), [])


def _instance_name(scope: Scope) -> Optional[str]:
    """`self` inside a method, also inside functions nested in a method."""
    walk: Optional[Scope] = scope
    while walk is not None:
        if walk.self_name is not None:
            return walk.self_name
        walk = walk.parent
    return None


def instance_name(scope: Scope) -> Optional[str]:
    return _instance_name(scope)
