"""DL301: evaluation runs a model with dropout/batch-norm still in training mode."""

from typing import List, Optional

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.facts import Loop, Scope
from dllint.model.flow import Analysis, Event
from dllint.model.loops import in_loop
from dllint.registry import rule

CALLER_DEPTH = 2


@rule("DL301", "missing-eval", "error",
      "evaluation code runs a model with dropout or batch-norm without calling model.eval() first")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for loop in scope.loops:
            if not _is_evaluation_loop(analysis, scope, loop, events):
                continue
            for forward in in_loop(events, loop):
                if forward.kind != "forward" or forward.helpers or _is_own_method(analysis, scope, forward):
                    continue
                callee = forward.call.node.func
                if analysis.has_dropout_or_batchnorm(callee, scope, forward.site_order) is False:
                    continue
                if _mode_before(events, forward.site_order, forward.receiver) == "eval":
                    continue
                if _mode_before(events, forward.site_order, forward.receiver) is None and \
                        _every_caller_sets_eval(analysis, scope, CALLER_DEPTH):
                    continue
                ctx.report(forward.node, f"{forward.receiver} runs in evaluation code but is still in training mode "
                                         f"(no {_owner(forward.receiver)}.eval() before it), so dropout and "
                                         f"batch-norm behave as in training; call {_owner(forward.receiver)}.eval() "
                                         f"before evaluating and .train() after")


def _is_own_method(analysis: Analysis, scope: Scope, forward: Event) -> bool:
    """A module's own method (e.g. generate()) running itself: its caller decides the mode."""
    self_name = scope.self_name
    if scope.cls is None or self_name is None or not analysis.is_module_class(scope.cls):
        return False
    receiver = forward.receiver or ""
    return receiver == self_name or receiver.startswith(self_name + ".")


def _owner(receiver: Optional[str]) -> str:
    return receiver or "model"


def _is_evaluation_loop(analysis: Analysis, scope: Scope, loop: Loop, events: List[Event]) -> bool:
    inside = in_loop(events, loop)
    if any(e.kind in ("backward", "step") for e in inside):
        return False
    if loop.under_no_grad or any(e.kind == "forward" and e.call.no_grad for e in inside):
        return True
    return api.is_eval_function_name(scope.name) and analysis.is_batch_loop(loop)


def _related(receiver: Optional[str], forward_receiver: Optional[str]) -> bool:
    if receiver is None or forward_receiver is None:
        return True
    return (receiver == forward_receiver or forward_receiver.startswith(receiver + ".")
            or receiver.startswith(forward_receiver + "."))


def _mode_before(events: List[Event], order: int, receiver: Optional[str]) -> Optional[str]:
    """The last mode switch (eval/train) before `order` in this scope that may concern `receiver`."""
    for event in reversed(events):
        if event.site_order >= order or event.kind not in ("eval", "train"):
            continue
        if event.helpers or _related(event.receiver, receiver):
            return event.kind
    return None


def _every_caller_sets_eval(analysis: Analysis, scope: Scope, depth: int) -> bool:
    callers = analysis.project.callers(scope)
    if not callers or depth == 0:
        return False
    for call in callers:
        caller_events = analysis.events(call.scope)
        mode = _mode_before(caller_events, call.order, None)
        if mode == "eval":
            continue
        if mode is None and _every_caller_sets_eval(analysis, call.scope, depth - 1):
            continue
        return False
    return True
