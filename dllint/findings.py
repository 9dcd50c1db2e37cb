"""Plain data that flows from the checks to the formatters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class RuleInfo:
    """What the outside world knows of a rule: no check, only metadata."""

    code: str
    name: str
    severity: str
    summary: str
    # In the default selection (as in ruff): rules whose findings are mostly deliberate in real code
    # are opt-in and run only when a `select`/`extend-select` names them (code, prefix, name or ALL).
    default: bool = True


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at one place. Ordered by path, then position, then code."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str = field(compare=False)
    severity: str = field(compare=False)
    message: str = field(compare=False)
    fix: Optional[Dict[str, Any]] = field(default=None, compare=False)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
