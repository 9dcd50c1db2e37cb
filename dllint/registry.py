"""The rule registry: every rule's metadata (dllint/rule_table.py) and its check, found by importing
dllint.checks when a check is first needed."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from dllint.findings import SEVERITIES, RuleInfo
from dllint.rule_table import RULE_INFOS

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

    @property
    def code(self) -> str:
        return self.info.code

    @property
    def check(self) -> Optional[CheckFunction]:
        """The check function; the first use imports every check module (and libcst)."""
        _load_checks()
        return _CHECKS.get(self.info.code)


_RULES: Dict[str, Rule] = {
    info.code: Rule(info) for info in (PARSE_ERROR, UNUSED_SUPPRESSION, INTERNAL_ERROR, *RULE_INFOS)
}
_CHECKS: Dict[str, CheckFunction] = {}
_loaded = False


def rule(code: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under its code from dllint/rule_table.py."""
    if code not in _RULES or code in (PARSE_ERROR.code, UNUSED_SUPPRESSION.code, INTERNAL_ERROR.code):
        raise ValueError(f"{code}: not a rule of dllint/rule_table.py")
    if _RULES[code].info.severity not in SEVERITIES:
        raise ValueError(f"{code}: unknown severity {_RULES[code].info.severity!r}")

    def register(check: CheckFunction) -> CheckFunction:
        if code in _CHECKS:
            raise ValueError(f"rule code {code} registered twice")
        _CHECKS[code] = check
        return check

    return register


def _load_checks() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import dllint.checks as package

    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)


def all_rules() -> List[Rule]:
    """Every rule, in code order (metadata only: no check module is imported)."""
    return [_RULES[code] for code in sorted(_RULES)]


def get_rule(code: str) -> Optional[Rule]:
    return _RULES.get(code)
