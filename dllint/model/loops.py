"""Helpers over ordered events: which loop an action repeats in, and what else happens there."""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

import libcst as cst

from dllint.model.builder import dotted_name
from dllint.model.facts import Loop, Scope
from dllint.model.torch_api import looks_like_model, looks_like_optimizer
from dllint.model.flow import Event


def loop_chain(event: Event) -> Tuple[Loop, ...]:
    """All loops around an action, outermost first: the analysed scope's, then the helpers'."""
    return event.loops + event.inner_loops


def innermost_shared_loop(event: Event, others: Iterable[Event]) -> Optional[Loop]:
    """The innermost loop around `event` that also repeats one of `others`."""
    other_chains = [set(map(id, loop_chain(o))) for o in others]
    for loop in reversed(loop_chain(event)):
        if any(id(loop) in chain for chain in other_chains):
            return loop
    return None


def in_loop(events: Iterable[Event], loop: Loop) -> List[Event]:
    return [e for e in events if any(l is loop for l in loop_chain(e))]


def same_target(first: Event, second: Event) -> bool:
    """Could two actions concern the same optimizer/model? Receivers are compared only within one scope."""
    if first.receiver is None or second.receiver is None or first.call.scope is not second.call.scope:
        return True
    a, b = first.receiver, second.receiver
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def mutually_exclusive(first_conditions, second_conditions, facts=None) -> bool:
    """Do two places sit in different branches of one `if` (so at most one of them runs)? With the
    file's facts, also in opposite branches of two `if`s testing the same thing (`if scaler is not
    None:` ... later `if scaler is None:` or the `else` of a second `if scaler is not None:`)."""
    for condition in first_conditions:
        orelse = getattr(condition, "orelse", None)
        if orelse is not None and any(c is orelse for c in second_conditions):
            return True
    for condition in second_conditions:
        orelse = getattr(condition, "orelse", None)
        if orelse is not None and any(c is orelse for c in first_conditions):
            return True
    if facts is not None:
        first = {_branch_test(c, facts) for c in first_conditions} - {None}
        second = {_branch_test(c, facts) for c in second_conditions} - {None}
        return any((text, not holds) in second for text, holds in first)
    return False


def _branch_test(branch, facts) -> Optional[Tuple[str, bool]]:
    """(normalized test text, whether it holds) for an `if` body or an `else` branch."""
    if isinstance(branch, cst.If):
        test, holds = branch.test, True
    elif id(branch) in facts.else_tests:
        test, holds = facts.else_tests[id(branch)], False
    else:
        return None
    while isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test, holds = test.expression, not holds
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and \
            isinstance(test.comparisons[0].operator, (cst.IsNot, cst.NotEqual)):
        target = test.comparisons[0]
        operator = cst.Is() if isinstance(target.operator, cst.IsNot) else cst.Equal()
        test, holds = test.with_changes(comparisons=[target.with_changes(operator=operator)]), not holds
    return _EMPTY_MODULE.code_for_node(test), holds


_EMPTY_MODULE = cst.Module(body=[])


def mode_chosen_by_branch(switch: Event, events: Iterable[Event]) -> bool:
    """Is this eval()/train() one branch of an `if` whose other branch switches the same model to the
    other mode (`if phase == "train": model.train() else: model.eval()`)? Then the mode is chosen
    afresh at that point on every pass, by the same condition that usually guards the step."""
    opposite = "train" if switch.kind == "eval" else "eval"
    for other in events:
        if other.kind == opposite and other.call.scope is switch.call.scope and \
                other.receiver == switch.receiver and \
                mutually_exclusive(switch.call.conditions, other.call.conditions):
            return True
    return False


def related_receivers(receiver: Optional[str], other: Optional[str]) -> bool:
    """Could a mode switch on `receiver` concern a forward through `other` (same object or a parent)?"""
    if receiver is None or other is None:
        return True
    return receiver == other or other.startswith(receiver + ".") or receiver.startswith(other + ".")


def mode_switch_before(events: List[Event], order: int, receiver: Optional[str],
                       scope: Optional[Scope] = None) -> Optional[Event]:
    """The last mode switch (eval/train event) before `order` that may concern `receiver`. With the
    scope, a receiver that is a loop variable over a list (`[model(x) for model in ensemble]`) is
    also switched by a loop over the same list (`for member in ensemble: member.eval()`)."""
    collection = collection_iterated(scope, receiver, order) if scope is not None else None
    for event in reversed(events):
        if event.site_order >= order or event.kind not in ("eval", "train"):
            continue
        switched = receiver_at_site(event)
        if related_receivers(switched, receiver):
            return event
        if collection is not None and not event.helpers and \
                collection_iterated(scope, switched, event.site_order) == collection:
            return event
    return None


_ITERATION_WRAPPERS = ("enumerate", "tqdm", "tqdm.tqdm", "iter", "reversed", "list")


def collection_iterated(scope: Scope, name: Optional[str], order: int) -> Optional[str]:
    """`models` when `name` is the variable of a `for` loop or comprehension over `models` (or
    `enumerate(models)`) at `order`; None otherwise."""
    if not name or "." in name:
        return None
    iterated = scope.iterated_by(name, order)
    while isinstance(iterated, cst.Call) and iterated.args and dotted_name(iterated.func) in _ITERATION_WRAPPERS:
        iterated = iterated.args[0].value
    return dotted_name(iterated) if iterated is not None else None


def receiver_at_site(event: Event) -> Optional[str]:
    """What a switch acts on, in the analysed scope's names: `train(model, head)` whose body calls
    `head.train()` switches `head`. None (any object) when a deeper helper chain hides it."""
    if not event.helpers:
        return event.receiver
    if event.receiver and _built_inside(event.helpers[-1], event.receiver):
        # `model = Model(envs); model.eval()` in an evaluation helper: an object the caller never sees.
        return f"{event.helpers[-1].name}{HELPER_LOCAL}{event.receiver}"
    if len(event.helpers) == 1 and isinstance(event.site, cst.Call):
        return argument_for(event.site, event.helpers[0], event.receiver)
    return None


# Marks a receiver that is a local of a helper (`evaluate:model`): no name of the caller equals it.
HELPER_LOCAL = ":"


def is_helper_local(receiver: Optional[str]) -> bool:
    return receiver is not None and HELPER_LOCAL in receiver


def _built_inside(helper: Scope, receiver: str) -> bool:
    """Is `receiver` a local of `helper` that every assignment builds afresh there: a call that is
    given no model the helper receives (`Model(envs)`, not `unwrap_model(model)`)?"""
    root = receiver.split(".", 1)[0]
    definitions = helper.definitions.get(root)
    if not definitions or root in helper.params:
        return False
    for definition in definitions:
        value = definition.value
        if definition.kind != "assign" or definition.unpack_path or not isinstance(value, cst.Call):
            return False
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                value.func.attr.value in ("to", "cuda", "cpu", "float", "half", "eval", "train"):
            value = value.func.value
        if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Name):
            return False
        if any(isinstance(arg.value, cst.Name) and arg.value.value in helper.params and
               looks_like_model(arg.value.value) for arg in value.args):
            return False
    return True


def argument_for(call: cst.Call, callee: Scope, name: Optional[str]) -> Optional[str]:
    """The caller's text for `name` (a parameter of `callee`, or an attribute path under one) at
    `call`; None when it cannot be told."""
    if name is None:
        return None
    root, _, rest = name.partition(".")
    params = list(callee.params)
    bound = callee.cls is not None and isinstance(call.func, cst.Attribute) and params and \
        params[0] == callee.self_name
    if bound:
        params = params[1:]
        if root == callee.self_name:
            owner = dotted_name(call.func.value)  # type: ignore[attr-defined]
            return f"{owner}.{rest}" if owner and rest else owner
    if root not in params or any(arg.star for arg in call.args):
        return None
    position = params.index(root)
    positional = [arg for arg in call.args if arg.keyword is None]
    named = [arg for arg in call.args if arg.keyword is not None and arg.keyword.value == root]
    arg = named[0] if named else positional[position] if position < len(positional) else None
    text = dotted_name(arg.value) if arg is not None else None
    return f"{text}.{rest}" if text and rest else text


def mode_before(events: List[Event], order: int, receiver: Optional[str]) -> Optional[str]:
    """The last mode switch ("eval" or "train") before `order` that may concern `receiver`."""
    switch = mode_switch_before(events, order, receiver)
    return switch.kind if switch is not None else None


def trains_between(events: List[Event], start: int, end: int) -> bool:
    """Does an optimizer step or backward run between two points of a scope?"""
    return any(start < e.site_order < end and e.kind in ("step", "backward") for e in events)


def every_caller_sets_eval(analysis, scope, receiver: Optional[str] = None, depth: int = 2) -> bool:
    """Does every call path into `scope` switch `receiver` (None: any model) to eval mode first
    (looking `depth` callers up)?"""
    callers = analysis.project.callers(scope)
    if not callers or depth == 0:
        return False
    for call in callers:
        passed = argument_for(call.node, scope, receiver)
        mode = mode_before(analysis.events(call.scope), call.order, passed)
        if mode == "eval":
            continue
        if mode is None and every_caller_sets_eval(analysis, call.scope, passed, depth - 1):
            continue
        return False
    return True


def conditional_in_loop(call, loop: Loop) -> bool:
    """Does an `if` inside `loop` guard this call (so it does not run on every iteration)?"""
    return len(call.conditions) > len(loop.conditions)


def leaves_early(call) -> bool:
    """Is the call inside a branch that ends in continue/break/return/raise?"""
    exiting = call.scope.file.exiting_branches
    return any(id(condition) in exiting for condition in getattr(call, "conditions", ()))


def clears_gradients_for(analysis, zero_grad: Event, step: Event) -> bool:
    """Does this zero_grad (or p.grad = None) clear the gradients that `step` applies?"""
    if zero_grad.receiver is None or step.receiver is None or zero_grad.call.scope is not step.call.scope:
        return True
    if same_target(zero_grad, step):
        return True
    if _is_optimizer(analysis, zero_grad):
        return not looks_like_optimizer(step.receiver) or same_target(zero_grad, step)
    # model.zero_grad() clears the parameters of that model only.
    model = analysis.optimized_model(step.call)
    return model is None or related_receivers(zero_grad.receiver, model)


def _is_optimizer(analysis, event: Event) -> bool:
    func = getattr(event.call.node, "func", None)
    if func is not None and hasattr(func, "value") and \
            analysis.object_role(func.value, event.call.scope, event.call.order) == "optimizer":
        return True
    return looks_like_optimizer(event.receiver)
