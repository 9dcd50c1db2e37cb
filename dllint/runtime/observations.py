"""What the child process sends back: observations tied to source lines, and how the run ended.

Plain data shared by the parent (which never imports torch) and the child.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

# A source location as the child reports it: absolute real path, 1-based line and column.
Site = Tuple[str, int, int]

# Runtime-only codes (no static rule) reported outside the probe's checks: the --model checks and the
# sandbox; each check in dllint.runtime.checks declares its own. code -> (name, severity, summary).
RUNTIME_CHECKS: Dict[str, Tuple[str, str, str]] = {
    "RT302": ("dead-parameters", "warning", "parameters never received a gradient"),
    "RT303": ("cannot-overfit-batch", "warning", "the model cannot overfit one fixed batch"),
    "RT304": ("input-ignored", "warning", "training on zeroed inputs does as well as training on the real inputs"),
    "RT305": ("eval-not-deterministic", "error", "two identical evaluation forwards give different outputs"),
    "RT901": ("network-access", "error", "the script tried to reach the network"),
}

# Verdicts on static findings.
CONFIRMED = "CONFIRMED"
NOT_REPRODUCED = "NOT REPRODUCED"
NOT_REACHED = "NOT REACHED"
NOT_CHECKED = "NOT CHECKED"
# The verdict of an observation that no static finding predicted.
FOUND = "FOUND"


def shape_text(shape) -> str:
    """A tensor shape as Python writes a tuple: (32, 10), (32,)."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


@dataclass
class Observation:
    """One thing the run showed, for one rule code.

    `confirmed` is set only above the check's explicit threshold; below it the observation is evidence
    for the record (reported as info), never a confirmation. A `summary` observation has no sites: it
    says what was checked everywhere (the evidence behind NOT REPRODUCED).
    """

    code: str
    evidence: str
    confirmed: bool = False
    sites: List[Site] = field(default_factory=list)
    severity: Optional[str] = None
    # "statement": matches a finding on the same statement as a site; "function": also a lone finding of
    # the same code elsewhere in the site's function (where the evidence cannot name the exact line).
    scope: str = "statement"
    summary: bool = False

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Observation":
        data = dict(data)
        data["sites"] = [tuple(site) for site in data.get("sites", [])]
        return cls(**data)


@dataclass
class RunOutcome:
    """How the child's run of the script ended.

    status: finished (ran to its end), stopped (step budget reached), timeout, crashed (uncaught
    exception), exited (sys.exit with a non-zero status), no-torch, error (the runner itself failed).
    """

    status: str
    steps: int = 0
    seconds: float = 0.0
    exit_code: Optional[int] = None
    traceback: str = ""
    error: str = ""
    device: str = ""
    reached: Dict[str, List[int]] = field(default_factory=dict)
    loaded_files: List[str] = field(default_factory=list)
    losses: List[float] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunOutcome":
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})
