"""What values are and what code does: value kinds, instance classes, ordered training events.

Everything here is derived lazily from the collected facts and cached, so checks
that do not ask for a fact never pay for it.

The questions live in their own modules, one mixin each, composed here into one Analysis (they
share its caches and call each other through it): origins.py (where a value comes from, what an
object is), value_kinds.py (the activation a value went through), module_classes.py (what a
project class is), gradients.py (losses, what they are computed from, backpropagation), events.py
(training actions in order, batch loops), call_arguments.py (arguments bound to parameters).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.call_arguments import bound_argument, strip_device_moves
from dllint.model.events import Event, TrainingEvents
from dllint.model.facts import CallSite, Scope
from dllint.model.gradients import GradientFlow, LossCall
from dllint.model.module_classes import ClassSummary, ModuleClasses
from dllint.model.origins import Instance, Origin, ValueOrigins
from dllint.model.project import Project
from dllint.model.value_kinds import Source, ValueKinds

# Rules and other model modules import these from here.
__all__ = ["Analysis", "ClassSummary", "Event", "Instance", "LossCall", "Origin", "Source", "bound_argument",
           "strip_device_moves"]


class Analysis(ValueOrigins, ValueKinds, ModuleClasses, GradientFlow, TrainingEvents):
    """Derived facts over a project, cached per object."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._events: Dict[Tuple[int, int], List[Event]] = {}
        self._class_info: Dict[int, "ClassSummary"] = {}
        self._losses: Dict[int, List[LossCall]] = {}
        self._call_index: Dict[int, Dict[int, CallSite]] = {}
        self._instances: Dict[Tuple[int, int, int, bool], List[Instance]] = {}
        self._sources: Dict[Tuple[int, int, int], Optional[Source]] = {}
        self._memo: Dict[Tuple[str, int], object] = {}
        self._origin_steps: Dict[tuple, list] = {}  # see ValueOrigins.origins
        self._callees_resolving: Set[int] = set()  # calls whose instance callee is being worked out
        self._provisional_reads = 0  # reads of a callee still being resolved (see ValueOrigins.instances)
        self._moved_instances: Dict[Tuple[int, int, int, bool, int], List[Instance]] = {}
        self._built: Dict[Tuple[int, int], object] = {}

    def memo(self, question: str, subject: object, compute):
        """A derived fact computed once per analysis: `compute(subject)`, cached by identity."""
        key = (question, id(subject))
        if key not in self._memo:
            self._memo[key] = compute(subject)
        return self._memo[key]

    # -- names and definitions ---------------------------------------------------
    def qualify(self, expr: Optional[cst.CSTNode], scope: Scope) -> Optional[str]:
        return self.project.qualify(expr, scope.file)

    def torch_member(self, expr: Optional[cst.CSTNode], scope: Scope, names) -> Optional[str]:
        return api.torch_member(self.qualify(expr, scope), names)
