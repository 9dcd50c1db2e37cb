"""Where the instances of a module class run: only in training code, or somewhere evaluation may reach."""

from __future__ import annotations

import os

from dllint.model.builder import dotted_name
from dllint.model.facts import ClassFacts, Scope
from dllint.model.flow import Analysis
from dllint.model.loops import in_loop

# Methods a trainer calls only while training (Lightning's training_step).
TRAINING_ONLY_METHODS = {"training_step", "train_step"}
# Methods of a module that neither run it nor hand it on.
_BOOKKEEPING = {"parameters", "named_parameters", "zero_grad", "train", "to", "cuda", "cpu", "apply", "state_dict",
                "load_state_dict", "requires_grad_"}


def runs_only_in_training(scope: Scope) -> bool:
    """In `training_step` itself or in a function nested in it."""
    walk = scope
    while walk is not None:
        if walk.name in TRAINING_ONLY_METHODS:
            return True
        walk = walk.parent
    return False


def called_only_in_training(analysis: Analysis, cls: ClassFacts) -> bool:
    """Is every instance of the module class built in the project called only from training code (a
    `training_step`, a method that steps an optimizer, a loop that steps one), and handed nowhere else?
    A GAN discriminator usually is: only the generator is sampled at evaluation."""
    return analysis.memo("called_only_in_training", cls, lambda c: _called_only_in_training(analysis, c))


def _called_only_in_training(analysis: Analysis, cls: ClassFacts) -> bool:
    project = analysis.project
    init = project.method_of(cls, "__init__")
    sites = project.callers(init) if init is not None else []
    if not sites:
        return False
    for site in _placements(project, sites):
        if site is None:
            return False
        if _in_test_code(site.scope):
            continue  # a unit test calling the module directly is not evaluation of a trained model
        scope = site.scope
        attributes = [name for name, d in scope.self_definitions if d.value is site.node] \
            if scope.cls is not None else []
        names = [name for name, ds in scope.definitions.items() if any(d.value is site.node for d in ds)]
        if attributes and not names:
            if not all(_attribute_used_in_training(analysis, scope.cls, a) for a in attributes):
                return False
        elif names and not attributes:
            if not all(_name_used_in_training(analysis, scope, n) for n in names):
                return False
        else:
            return False  # `Discriminator()` passed on directly: where it runs is not at hand
    return True


def _in_test_code(scope: Scope) -> bool:
    name = os.path.basename(scope.file.path)
    folders = scope.file.module_name.split(".")[:-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" or \
        bool({"tests", "test"}.intersection(folders))


def _placements(project, sites, depth=0):
    """The calls whose result is stored: a constructor call returned by a builder method
    (`def init_discriminator(self): return Discriminator()`) is placed where the builder is called.
    None stands for a placement that cannot be followed."""
    for site in sites:
        scope = site.scope
        if any(value is site.node for _, value in scope.returns):
            callers = project.callers(scope) if depth < 2 else []
            if not callers:
                yield None
            yield from _placements(project, callers, depth + 1)
        else:
            yield site


def _attribute_used_in_training(analysis: Analysis, owner: ClassFacts, attribute: str) -> bool:
    if analysis.project.read_from_outside(owner, attribute):
        return False  # `gan.discriminator(...)` somewhere else: where that runs is not at hand
    for method in owner.methods.values():
        spelled = f"{method.self_name}.{attribute}"
        calls = [c for c in method.calls if c.callee_text == spelled]
        if any((c.callee_text or "").startswith(spelled + ".") and c.method not in _BOOKKEEPING for c in method.calls):
            return False  # `self.discriminator.forward(...)`, `.predict(...)`: not a training call we can place
        reads = len(method.self_attribute_reads.get(attribute, [])) - method.member_reads.get(attribute, 0)
        if reads > len(calls):
            return False  # `self.discriminator` handed on or stored elsewhere
        if calls and not _trains(analysis, method):
            return False
    return True


def _name_used_in_training(analysis: Analysis, scope: Scope, name: str) -> bool:
    """`netD = Discriminator()` whose every call sits in a loop that steps an optimizer, and that is
    handed to nothing (no `evaluate(netD)`, no `netD.forward(...)`)."""
    events = analysis.events(scope)
    calls = []
    for call in scope.calls:
        if any(dotted_name(arg.value) == name for arg in call.node.args):
            return False
        if call.callee_text == name:
            calls.append(call)
        elif (call.callee_text or "").startswith(name + ".") and call.method not in _BOOKKEEPING:
            return False
    if not calls:
        return False
    if runs_only_in_training(scope):
        return True
    return not any(e.kind == "eval" for e in events) and all(
        call.loops and any(e.kind == "step" for e in in_loop(events, call.loops[-1])) for call in calls)


def _trains(analysis: Analysis, scope: Scope, depth: int = 0) -> bool:
    """A training step: Lightning's `training_step`, a method that steps an optimizer and has no
    evaluation switch in it, or a helper (`discriminator_loss`) that only such steps call."""
    if runs_only_in_training(scope):
        return True
    events = analysis.events(scope)
    if any(e.kind == "step" for e in events) and not any(e.kind == "eval" for e in events):
        return True
    callers = analysis.project.callers(scope) if depth < 3 and scope.name != "forward" else []
    return bool(callers) and all(_trains(analysis, call.scope, depth + 1) for call in callers)
