"""The rule registry: every rule's metadata and check, found by importing dllint.checks."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from dllint.findings import SEVERITIES, RuleInfo

if TYPE_CHECKING:
    from dllint.model.project import CheckContext

CheckFunction = Callable[["CheckContext"], None]

# Codes the engine itself emits; they have pages but no check function.
PARSE_ERROR = RuleInfo("DL000", "parse-error", "error", "The file could not be parsed as Python.")
UNUSED_SUPPRESSION = RuleInfo(
    "DL998", "unused-suppression", "warning", "A suppression comment silences no finding."
)
INTERNAL_ERROR = RuleInfo(
    "DL999", "internal-error", "error", "A rule crashed on this file; the other rules still ran."
)


@dataclass(frozen=True)
class Rule:
    info: RuleInfo
    check: Optional[CheckFunction]

    @property
    def code(self) -> str:
        return self.info.code


_RULES: Dict[str, Rule] = {}
_loaded = False


def rule(code: str, name: str, severity: str, summary: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under a stable code and name."""
    if severity not in SEVERITIES:
        raise ValueError(f"{code}: unknown severity {severity!r}")

    def register(check: CheckFunction) -> CheckFunction:
        if code in _RULES:
            raise ValueError(f"rule code {code} registered twice")
        _RULES[code] = Rule(RuleInfo(code, name, severity, summary), check)
        return check

    return register


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    _RULES[PARSE_ERROR.code] = Rule(PARSE_ERROR, None)
    _RULES[UNUSED_SUPPRESSION.code] = Rule(UNUSED_SUPPRESSION, None)
    _RULES[INTERNAL_ERROR.code] = Rule(INTERNAL_ERROR, None)
    import dllint.checks as package

    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)


def all_rules() -> List[Rule]:
    _load()
    return [_RULES[code] for code in sorted(_RULES)]


def get_rule(code: str) -> Optional[Rule]:
    _load()
    return _RULES.get(code)
