"""DL101: gradients are never cleared in the loop that steps the optimizer."""

from dllint.context import CheckContext
from dllint.fixes import UNSAFE, Fix, insert_before
from dllint.model.loops import clears_gradients_for, in_loop, innermost_shared_loop, loop_chain
from dllint.model.syntax import enclosing_statement
from dllint.registry import rule


@rule("DL101")
def check(ctx: CheckContext) -> None:
    for scope in ctx.scopes:
        events = ctx.analysis.events(scope)
        backwards = [e for e in events if e.kind == "backward"]
        for step in (e for e in events if e.kind == "step"):
            loop = innermost_shared_loop(step, backwards)
            if loop is None:
                continue  # no loop seen from here; a caller's view may have one
            clears = [e for e in in_loop(events, loop)
                      if e.kind == "zero_grad" and clears_gradients_for(ctx.analysis, e, step)]
            if clears:
                continue
            optimizer = step.receiver or "optimizer"
            chain = loop_chain(step)
            enclosing = chain[:[id(l) for l in chain].index(id(loop))]
            outside = [e for outer in enclosing for e in in_loop(events, outer)
                       if e.kind == "zero_grad" and clears_gradients_for(ctx.analysis, e, step)]
            if outside:
                message = (f"{optimizer}.step() runs every iteration but gradients are cleared only outside this "
                           f"loop ({ctx.location(outside[-1].node, outside[-1].call.scope.file)}), so they accumulate; "
                           f"call {optimizer}.zero_grad() inside the loop.")
            else:
                message = (f"{optimizer}.step() runs every iteration but gradients are never cleared in this loop; "
                           f"call {optimizer}.zero_grad() before backward().")
            ctx.report(step.node, message, file=step.call.scope.file, fix=_insert_zero_grad(step, backwards, loop))



def _insert_zero_grad(step, backwards, loop):
    """Unsafe: clearing at each iteration changes the meaning of deliberate accumulation."""
    # The loop must be in the function that steps and calls backward(): then the fix is the same from
    # every caller's view (a script's main() reaches it through helpers, and its view is reported first).
    backward = next((b for b in backwards if b.call.scope is step.call.scope and loop.scope is step.call.scope and
                     any(l is loop for l in loop_chain(b))), None)
    if backward is None:
        return None
    statement = enclosing_statement(backward.call.scope.node, backward.node)
    if statement is None:
        return None
    optimizer = step.receiver or "optimizer"
    return Fix(UNSAFE, f"call {optimizer}.zero_grad() before backward()", statement,
               insert_before(statement, f"{optimizer}.zero_grad()"))
