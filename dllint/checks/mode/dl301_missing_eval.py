"""DL301: evaluation runs a model with dropout/batch-norm that is known to be in training mode."""

from typing import List, Optional, Tuple

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.facts import ClassFacts, Loop, Scope
from dllint.model.flow import Analysis, Event
from dllint.model.loops import every_caller_sets_eval, in_loop, mode_switch_before, trains_between
from dllint.model import modes
from dllint.registry import rule


@rule("DL301")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for loop in scope.loops:
            if not _is_evaluation_loop(analysis, scope, loop, events):
                continue
            if scope.cls is not None and scope.name.startswith(api.LIGHTNING_EVAL_HOOK_PREFIXES):
                continue  # Lightning runs these callback hooks with the module already in eval mode
            for forward in in_loop(events, loop):
                if forward.kind == "forward":
                    _report_if_training(ctx, scope, events, forward, loop.start)
        if not ctx.in_test_module:
            for forward in modes.single_pass_evaluations(analysis, scope, events):
                _report_if_training(ctx, scope, events, forward, forward.site_order)


def _report_if_training(ctx: CheckContext, scope: Scope, events: List[Event], forward: Event, start: int) -> None:
    """Report an evaluation's forward pass (starting at `start`) whose model is in training mode."""
    analysis = ctx.analysis
    if forward.helpers or _is_own_method(analysis, scope, forward):
        return
    callee = forward.call.node.func
    if analysis.has_dropout_or_batchnorm(callee, scope, forward.site_order) is False:
        return
    switch = _last_switch(analysis, scope, events, forward)
    if switch is not None and switch[1] == modes.EVAL:
        return
    # train() right before a no-grad loop is deliberate (recomputing batch-norm statistics);
    # train() for a training loop that has run since is a leftover.
    if switch is not None and not trains_between(events, switch[0], start):
        return
    # With no switch in sight, only evidence that the model is in training mode counts.
    if switch is None and (every_caller_sets_eval(analysis, scope, forward.receiver) or
                           _kept_in_eval_by_its_class(analysis, scope, forward.receiver) or
                           _mode_from_origin(analysis, scope, forward) != modes.TRAIN):
        return
    ctx.report(forward.node, f"{forward.receiver} runs in evaluation code but is still in training mode "
                             f"(no {_owner(forward.receiver)}.eval() before it), so dropout and "
                             f"batch-norm behave as in training; call {_owner(forward.receiver)}.eval() "
                             f"before evaluating and .train() after.")


def _last_switch(analysis: Analysis, scope: Scope, events: List[Event], forward: Event) -> Optional[Tuple[int, str]]:
    """(order, mode) of the last mode switch before the call that concerns the called model: eval() /
    train() under any of its names, or a method of its class that switches the object itself."""
    order, receiver = forward.site_order, forward.receiver
    found: Optional[Tuple[int, str]] = None
    for name in [receiver] + sorted(modes.same_module_names(analysis, scope, receiver, order)):
        switch = mode_switch_before(events, order, name, scope)
        if switch is not None and (found is None or switch.site_order > found[0]):
            found = (switch.site_order, switch.kind)
    by_method = modes.method_switch_before(analysis, scope, order, receiver)
    if by_method is not None and (found is None or by_method[0] > found[0]):
        found = by_method
    return found


def _is_own_method(analysis: Analysis, scope: Scope, forward: Event) -> bool:
    """A module's own method (e.g. generate()) running itself: its caller decides the mode."""
    self_name = scope.self_name
    if scope.cls is None or self_name is None or not analysis.is_module_class(scope.cls):
        return False
    receiver = forward.receiver or ""
    return receiver == self_name or receiver.startswith(self_name + ".")


def _kept_in_eval_by_its_class(analysis: Analysis, scope: Scope, receiver: Optional[str]) -> bool:
    """`self.model.eval()` in the constructor of a class (a pseudo-labelling loader, a frozen feature
    extractor) that never switches that model back to training."""
    if scope.cls is None or scope.self_name is None or not (receiver or "").startswith(scope.self_name + "."):
        return False
    attribute = receiver[len(scope.self_name):]
    cls: ClassFacts = scope.cls
    switches = {(method_name, event.kind) for method_name, method in cls.methods.items()
                for event in analysis.events(method)
                if event.kind in ("eval", "train") and event.receiver == f"{method.self_name}{attribute}"}
    return ("__init__", "eval") in switches and not any(kind == "train" for _, kind in switches)


def _mode_from_origin(analysis: Analysis, scope: Scope, forward: Event) -> Optional[str]:
    """The mode the called model is known to be in from how it was built or handed over."""
    receiver = forward.receiver
    if not receiver:
        return None
    root = receiver.split(".", 1)[0]
    if root == scope.self_name:
        return modes.attribute_mode(analysis, scope, receiver)
    return modes.name_mode(analysis, scope, root, forward.site_order)


def _owner(receiver: Optional[str]) -> str:
    return receiver or "model"


def _is_evaluation_loop(analysis: Analysis, scope: Scope, loop: Loop, events: List[Event]) -> bool:
    inside = in_loop(events, loop)
    if any(e.kind in ("backward", "step") for e in inside):
        return False
    if loop.under_no_grad or any(e.kind == "forward" and e.call.no_grad for e in inside):
        return modes.is_evaluation(analysis, scope, loop) or modes.decodes(analysis, scope, loop, inside)
    return api.is_eval_function_name(scope.name) and analysis.is_batch_loop(loop)

