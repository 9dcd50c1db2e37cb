"""Helpers over ordered events: which loop an action repeats in, and what else happens there."""

from __future__ import annotations

from typing import Iterable, List, Optional, Tuple

from dllint.model.facts import Loop
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


def mutually_exclusive(first_conditions, second_conditions) -> bool:
    """Do two places sit in different branches of one `if` (so at most one of them runs)?"""
    for condition in first_conditions:
        orelse = getattr(condition, "orelse", None)
        if orelse is not None and any(c is orelse for c in second_conditions):
            return True
    for condition in second_conditions:
        orelse = getattr(condition, "orelse", None)
        if orelse is not None and any(c is orelse for c in first_conditions):
            return True
    return False
