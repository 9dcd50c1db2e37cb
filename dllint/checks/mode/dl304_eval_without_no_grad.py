"""DL304: an evaluation loop that builds autograd graphs for nothing."""

from dllint.context import CheckContext
from dllint.model.loops import every_caller_sets_eval, in_loop, mode_before
from dllint.registry import rule


@rule("DL304")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for loop in scope.loops:
            if loop.under_no_grad:
                continue
            inside = in_loop(events, loop)
            if any(e.kind in ("backward", "step", "zero_grad") for e in inside):
                continue
            forwards = [e for e in inside if e.kind == "forward" and not e.helpers]
            if not forwards or any(f.call.no_grad for f in forwards) or not analysis.is_batch_loop(loop):
                continue
            first = forwards[0]
            mode = mode_before(events, first.site_order, first.receiver)
            if mode == "eval" or (mode is None and every_caller_sets_eval(analysis, scope)):
                ctx.report(first.node, f"{first.receiver} is evaluated without torch.no_grad(), so every batch "
                                       f"builds and keeps an autograd graph (slower, more memory); wrap the loop in "
                                       f"torch.no_grad() or torch.inference_mode().")
