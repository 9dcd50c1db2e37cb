"""DL102: gradients are cleared between backward() and step(), so the step uses zeros."""

from dllint.context import CheckContext
from dllint.model.loops import clears_gradients_for, leaves_early, loop_chain
from dllint.registry import rule


@rule("DL102")
def check(ctx: CheckContext) -> None:
    for scope in ctx.scopes:
        events = ctx.analysis.events(scope)
        for index, step in enumerate(events):
            if step.kind != "step":
                continue
            # Walk back from the step to the backward that feeds it, within one iteration.
            cleared = None
            for earlier in reversed(events[:index]):
                if not _same_iteration(earlier, step):
                    continue
                if earlier.kind in ("backward", "step"):
                    if earlier.kind == "backward" and cleared is not None:
                        ctx.report(cleared.node, f"gradients are cleared after backward() and before "
                                                 f"{step.receiver or 'optimizer'}.step(), so the step uses zero "
                                                 f"gradients; move zero_grad() before backward() or after step()",
                                   file=cleared.call.scope.file)
                    break
                if earlier.kind == "zero_grad" and clears_gradients_for(ctx.analysis, earlier, step) and \
                        not (leaves_early(earlier.call) and not _shares_branch(earlier, step)):
                    cleared = earlier


def _same_iteration(earlier, step) -> bool:
    """`earlier` runs in the step's iteration: inside the same loops (or loops nested within them)."""
    step_chain = loop_chain(step)
    earlier_chain = loop_chain(earlier)
    return len(earlier_chain) >= len(step_chain) and all(a is b for a, b in zip(earlier_chain, step_chain))


def _shares_branch(first, second) -> bool:
    conditions = getattr(second.call, "conditions", ())
    return any(c in conditions for c in getattr(first.call, "conditions", ()))
