"""The runtime checks: one module per check, named by the rule codes it observes (the runtime half of
the rules in dllint/checks/, plus the runtime-only RT codes).

A check is a class with these attributes, found here without a list to edit:
- ATTRIBUTE: its name on the probe (other checks reach it there: `probe.training.watching()`);
- ORDER: where its hooks go relative to the others' (lower first);
- CODES: the static rules it can confirm (their findings get NOT CHECKED otherwise);
- RUNTIME_CODES: code -> (name, severity, summary) of the runtime-only findings it reports;
- UNOBSERVABLE: code -> why a line that ran may still show nothing.
and these methods, all optional but `finish`: install() (its own wrappers around torch), the probe's
events on_root_forward(record, module, args, grad_enabled) and on_step(optimizer, sites, loss_value),
and finish() -> observations. Importing a check module never imports torch (the parent reads the
attributes); the child builds the checks with the probe.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Dict, List, Tuple

_CLASSES: List[type] = []


def check_classes() -> List[type]:
    """Every check class of this package, in hook order."""
    if not _CLASSES:
        found = []
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for value in vars(module).values():
                if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(value, "ATTRIBUTE"):
                    found.append(value)
        _CLASSES.extend(sorted(found, key=lambda cls: (cls.ORDER, cls.__name__)))
    return list(_CLASSES)


def checked_codes() -> set:
    return {code for cls in check_classes() for code in getattr(cls, "CODES", ())}


def runtime_codes() -> Dict[str, Tuple[str, str, str]]:
    codes: Dict[str, Tuple[str, str, str]] = {}
    for cls in check_classes():
        codes.update(getattr(cls, "RUNTIME_CODES", {}))
    return codes


def unobservable() -> Dict[str, str]:
    reasons: Dict[str, str] = {}
    for cls in check_classes():
        reasons.update(getattr(cls, "UNOBSERVABLE", {}))
    return reasons


def all_runtime_codes() -> Dict[str, Tuple[str, str, str]]:
    """Every runtime-only code: the checks' and those reported elsewhere (--model checks, the sandbox)."""
    from dllint.runtime.observations import RUNTIME_CHECKS

    return {**RUNTIME_CHECKS, **runtime_codes()}
