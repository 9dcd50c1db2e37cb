"""The project index: joins the facts of all files so names resolve across modules."""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple, Union

import libcst as cst

from dllint.model.builder import dotted_name
from dllint.model.facts import CallSite, ClassFacts, FileFacts, Scope

Target = Union[Scope, ClassFacts]


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
    """The project as one file sees it: its own facts, and other files' facts parsed on demand.

    Queries reach other files only along imports (what a name resolves to, who calls a function,
    who subclasses a class), and every file they consult is recorded in `consulted`, so a cached
    result can be keyed by exactly the files it depended on.
    """

    # A function imported by hundreds of files is library code; its callers say nothing about it.
    MAX_IMPORTERS = 40

    def __init__(self, catalogue, store) -> None:
        self.catalogue = catalogue
        self.store = store
        self.modules = catalogue.modules
        self.consulted: Set[int] = set()  # files whose content this lint depended on
        self.consulted_importers: Set[int] = set()  # files whose importer list it depended on
        self._calls_by_callee: Dict[tuple, Dict[int, List[CallSite]]] = {}
        self._callee_cache: Dict[int, Optional[Target]] = {}
        self._callers: Dict[int, List[CallSite]] = {}
        self._files_of: Dict[Tuple[str, int], Optional[int]] = {}
        # qualify's answers by node (the entry holds the node, so its id is not reused): rules ask
        # about the same expression nine times on average (1.2 M questions, training corpus).
        self._qualified: Dict[int, Tuple[cst.CSTNode, FileFacts, Optional[str]]] = {}

    def load(self, index: int, whole: bool = False) -> Optional[FileFacts]:
        """A file's facts: `whole` for the file being linted, else perhaps in parts (read as needed)."""
        self.consulted.add(index)
        return self.store.facts(index, whole)

    # -- names -------------------------------------------------------------------
    def qualify(self, expr: Optional[cst.CSTNode], facts: FileFacts) -> Optional[str]:
        """The import-resolved name of `expr`: `F.softmax` -> `torch.nn.functional.softmax`.
        A file's aliases are complete once its facts are built, so the answer never changes."""
        known = self._qualified.get(id(expr))
        if known is not None and known[0] is expr and known[1] is facts:
            return known[2]
        text = dotted_name(expr)
        qualified = None
        if text is not None:
            head, _, rest = text.partition(".")
            qualified = facts.aliases.get(head)
            if qualified is not None and rest:
                qualified = f"{qualified}.{rest}"
        self._qualified[id(expr)] = (expr, facts, qualified)
        return qualified

    def _module_for(self, qualified_module: str, facts: FileFacts, name: str) -> Optional[FileFacts]:
        """The file of a module, when it can define `name` (a file without a `class name` or `def name`
        is not parsed to learn that it does not)."""
        entry = self.modules.resolve(qualified_module, facts.module_name, facts.path)
        if entry is None:
            return None
        self.consulted.add(entry.index)
        return self.load(entry.index) if self.store.may_define(entry.index, name) else None

    def lookup(self, qualified: str, facts: FileFacts) -> Optional[Target]:
        """A class or top-level function of the project by its import-qualified name."""
        module, _, name = qualified.rpartition(".")
        if not name:
            return None
        if module in ("", "."):
            target_file: Optional[FileFacts] = facts if module == "" else self._module_for(".", facts, name)
        else:
            target_file = self._module_for(module, facts, name)
        if target_file is not None:
            return target_file.classes.get(name) or target_file.functions.get(name)
        return None

    def resolve_name(self, expr: cst.BaseExpression, facts: FileFacts) -> Optional[Target]:
        """A project class or function that `expr` (a Name or module.attr) refers to."""
        if isinstance(expr, cst.Name):
            # A class or function defined here shadows an import of the same name: imports come first
            # (and a `try: import ... except ImportError: def ...` fallback stands for the same thing).
            local = facts.classes.get(expr.value) or facts.functions.get(expr.value)
            if local is not None:
                return local
        qualified = self.qualify(expr, facts)
        if qualified is not None:
            return self.lookup(qualified, facts)
        return None

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

    # -- files that may refer to a file's names ------------------------------------
    def _referring_files(self, facts: FileFacts, name: str, may_refer=None) -> List[FileFacts]:
        """The file itself and the files importing it whose text mentions `name` (or passes the
        stricter test `may_refer(index, name)`)."""
        found = [facts]
        index = facts.index
        self.consulted_importers.add(index)
        importers = self.catalogue.importers_of(index)
        if len(importers) > self.MAX_IMPORTERS:
            return found
        for importer in importers:
            self.consulted.add(importer)
            if (may_refer or self.store.mentions)(importer, name):
                loaded = self.load(importer)
                if loaded is not None:
                    found.append(loaded)
        return found

    def subclasses(self, cls: ClassFacts) -> List[ClassFacts]:
        """Project classes that name `cls` as a direct base."""
        return [other for facts in self._referring_files(cls.file, cls.name) for other in facts.classes_mentioning(cls.name)
                if any(base is cls for base in self.base_classes(other))]

    def read_from_outside(self, cls: ClassFacts, attribute: str) -> bool:
        """Whether code outside the class reads `.attribute` of some object (`model.classifier`):
        in the class's file or in any file that imports it, directly or through other files."""
        seen = {cls.file.index}
        pending = [cls.file.index]
        while pending:
            index = pending.pop()
            self.consulted.add(index)
            self.consulted_importers.add(index)
            if self.store.may_read_attribute(index, attribute):
                loaded = self.load(index)
                if loaded is not None and loaded.reads_attribute(attribute):
                    return True
            importers = self.catalogue.importers_of(index)
            if len(importers) <= self.MAX_IMPORTERS:
                fresh = [i for i in importers if i not in seen]
                seen.update(fresh)
                pending.extend(fresh)
        return False

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
        """Call sites that invoke `target` (a function or `__init__`): in its own file and in the
        files importing it (calls are resolved through imports, so nothing else can reach it)."""
        found = self._callers.get(id(target))
        if found is None:
            name = target.cls.name if target.name == "__init__" and target.cls is not None else target.name
            found = []

            def may_call(index: int, spelled: str) -> bool:
                return self.store.may_call(index, spelled) and self._may_reach(index, target, name)

            for facts in self._referring_files(target.file, name, may_call):
                found.extend(self._calls_named(facts, name).get(id(target), []))
            self._callers[id(target)] = found
        return found

    def _may_reach(self, importer: int, target: Scope, name: str) -> bool:
        """Whether a call in `importer`, a file that imports the target's file, can resolve to
        `target` (called `name`), judged from what the importer imports and what its classes derive
        from, without parsing it. `callee` resolves a call in another file only to
        - a top-level function or class of the file an import names (`f(...)`, `module.f(...)`, an
          alias), a class standing for its `__init__` or the one it inherits;
        - a method, as `self.method(...)` in a class whose bases lead to the method's class.
        A nested function, or one a later definition of its name shadows, no other file reaches."""
        if importer == target.file.index:
            return True
        outline = self.store.import_outline(importer)
        if outline is None:
            return True
        cls = target.cls
        if cls is not None and cls.methods.get(target.name) is target and target.name != "__init__":
            # `self.name(...)`: the importer's classes must derive from a class of another file.
            for base in outline.class_bases:
                head, _, rest = base.partition(".")
                for qualified in outline.bindings.get(head, ()):
                    module = f"{qualified}.{rest}".rpartition(".")[0] if rest else qualified.rpartition(".")[0]
                    found = self._file_of(module, importer)
                    if found is not None and found != importer:
                        return True
            return False
        if target.name == "__init__":
            if cls is None or cls.methods.get("__init__") is not target:
                return False
        elif target.file.functions.get(target.name) is not target:
            return False
        home = target.file.index
        for names in outline.bindings.values():
            for qualified in names:
                module, _, last = qualified.rpartition(".")
                named_in = self._file_of(module, importer) if last == name else None
                as_module = self._file_of(qualified, importer)
                if home in (named_in, as_module):
                    return True  # `name(...)`, `alias(...)`, `module.name(...)`
                if cls is not None:
                    # A class of the same name elsewhere may inherit the target's `__init__`.
                    for other in (named_in, as_module):
                        if other is not None:
                            self.consulted.add(other)
                            if self.store.may_define(other, name):
                                return True
        return cls is not None and self.store.may_define(importer, name)

    def _file_of(self, module: str, importer: int) -> Optional[int]:
        """The file `lookup` reads for names of `module` in `importer` (`""`: the importer itself)."""
        if module == "":
            return importer
        key = (module, importer)
        if key not in self._files_of:
            entry = self.modules.resolve(module, self.catalogue.module_names.get(importer, ""),
                                         self.catalogue.items[importer].display_path)
            self._files_of[key] = None if entry is None else entry.index
        return self._files_of[key]

    def _calls_named(self, facts: FileFacts, name: str) -> Dict[int, List[CallSite]]:
        """A file's calls of anything called `name` (`name(...)`, `x.name(...)`), by what they invoke.
        Resolving only these keeps a query from parsing everything the file imports."""
        key = (id(facts), name)
        index = self._calls_by_callee.get(key)
        if index is None:
            index = {}
            spellings = [name] + [local for local, qualified in facts.aliases.items()
                                  if local != name and qualified.rpartition(".")[2] == name]
            by_spelling = _calls_by_spelling(facts, spellings)
            for call in (c for spelled in spellings for c in by_spelling.get(spelled, [])):
                callee = self.callee(call)
                if isinstance(callee, ClassFacts):
                    callee = self.method_of(callee, "__init__")
                if callee is not None:
                    index.setdefault(id(callee), []).append(call)
            self._calls_by_callee[key] = index
        return index


def _calls_by_spelling(facts: FileFacts, spellings: List[str]) -> Dict[str, List[CallSite]]:
    """A file's calls by the last name of what they call: `f(...)` and `x.f(...)` under "f".
    A file loaded in parts gives the calls of the functions that can contain one of `spellings`."""
    if facts.calls_by_spelling is not None:
        return facts.calls_by_spelling
    index: Dict[str, List[CallSite]] = {}
    for scope in facts.scopes_mentioning(spellings):
        for call in scope.calls:
            func = call.node.func
            if isinstance(func, cst.Name):
                index.setdefault(func.value, []).append(call)
            elif isinstance(func, cst.Attribute):
                index.setdefault(func.attr.value, []).append(call)
    if facts.parts is None or not facts.parts.pending:
        facts.calls_by_spelling = index
    return index


def calls_spelled(facts: FileFacts, names: List[str]) -> List[CallSite]:
    """A file's calls of anything whose last name is one of `names` (`f(...)`, `x.f(...)`)."""
    index = _calls_by_spelling(facts, names)
    return [call for name in names for call in index.get(name, [])]


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
