"""DL107: GradScaler used half-way: direct optimizer.step(), no update(), clipping scaled gradients."""

from dllint.context import CheckContext
from dllint.model.loops import in_loop, mutually_exclusive
from dllint.registry import rule


@rule("DL107")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        units = [in_loop(events, loop) for loop in scope.loops]
        units.append([e for e in events if not e.loops])  # a per-step helper without a loop
        for unit in units:
            if any(e.kind == "backward" and e.detail == "scaler" for e in unit):
                _check_unit(ctx, unit, lambda e: _site_conditions(analysis, scope, e),
                            lambda e: _other_branch_in_own_scope(analysis, e))


def _check_unit(ctx: CheckContext, unit, conditions, other_branch) -> None:
    scaled_backwards = [e for e in unit if e.kind == "backward" and e.detail == "scaler"]
    # Code in the other branch of `if use_amp:` runs without the scaler (also when a helper such as a
    # `loss_scaler(loss, optimizer)` object does the scaled backward in that branch).
    unit = [e for e in unit if not all(mutually_exclusive(conditions(e), conditions(b), e.call.scope.file) or
                                       _exclusive(e, b) for b in scaled_backwards)]
    scaled_steps = [e for e in unit if e.kind == "step" and e.detail == "scaler"]
    for event in unit:
        # A plain step in the other branch of a `scaler.step()` is the path taken without a scaler.
        if event.kind == "step" and event.detail != "scaler" and _steps_after(event, scaled_backwards) and \
                not other_branch(event) and not any(_exclusive(event, scaled) for scaled in scaled_steps):
            ctx.report(event.node, f"{event.receiver}.step() is called directly after scaler.scale(loss).backward(): "
                                   f"it steps with gradients still multiplied by the loss scale and skips the "
                                   f"inf/NaN check; call scaler.step({event.receiver}) instead.",
                       file=event.call.scope.file)
    if scaled_steps and not any(e.kind == "scaler_update" for e in unit):
        step = scaled_steps[-1]
        ctx.report(step.node, "scaler.step() runs but scaler.update() is never called: the loss scale never "
                              "adapts and the next scaler.step() raises RuntimeError; call scaler.update() after "
                              "scaler.step().", file=step.call.scope.file)
    backward_positions = [i for i, e in enumerate(unit) if e.kind == "backward" and e.detail == "scaler"]
    for index, event in enumerate(unit):
        if event.kind != "clip_grad" or not backward_positions or index < backward_positions[0]:
            continue
        last_backward = max(i for i in backward_positions if i < index)
        if not any(e.kind == "unscale" for e in unit[last_backward:index]):
            ctx.report(event.node, "Gradients are clipped while still multiplied by the GradScaler's loss scale, "
                                   "so the threshold is meaningless; call scaler.unscale_(optimizer) before "
                                   "clipping.", file=event.call.scope.file)


def _exclusive(first, second) -> bool:
    if first.call.scope is not second.call.scope:
        return False
    return mutually_exclusive(getattr(first.call, "conditions", ()), getattr(second.call, "conditions", ()),
                              first.call.scope.file)


def _site_conditions(analysis, scope, event):
    """The `if` branches around the place in `scope` that causes the event (the helper call for a
    helper's action)."""
    site = analysis.call_site(event.site, scope) if event.helpers else event.call
    return getattr(site, "conditions", ()) if site is not None else ()


def _other_branch_in_own_scope(analysis, step) -> bool:
    """Seen from the function that steps, every scaled backward there sits in the other branch."""
    scope = step.call.scope
    own = [e for e in analysis.events(scope) if e.kind == "backward" and e.detail == "scaler"]
    here = step.call.conditions
    return bool(own) and all(mutually_exclusive(here, _site_conditions(analysis, scope, b), scope.file) for b in own)


def _steps_after(step, scaled_backwards) -> bool:
    """Does this step belong to the training loop of a scaled backward? Two training functions, each
    with its own loop, run one after the other (even from a loop over settings) share nothing: one's
    scaler is not the other's."""
    own_loops = {id(loop) for loop in step.inner_loops}
    return any(not (own_loops and backward.inner_loops and not own_loops & {id(loop) for loop in backward.inner_loops})
               for backward in scaled_backwards)
