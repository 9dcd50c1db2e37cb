"""DL102: gradients are cleared between backward() and step(), so the step uses zeros."""

from dllint.context import CheckContext
from dllint.model.loops import loop_chain, same_target
from dllint.registry import rule


@rule("DL102", "zero-grad-before-step", "error",
      "zero_grad() runs between backward() and step(): the optimizer steps with cleared gradients")
def check(ctx: CheckContext) -> None:
    for scope in ctx.scopes:
        events = ctx.analysis.events(scope)
        for index, step in enumerate(events):
            if step.kind != "step":
                continue
            innermost = _innermost(step)
            # Walk back from the step to the backward that feeds it.
            for earlier in reversed(events[:index]):
                if _innermost(earlier) is not innermost:
                    continue
                if earlier.kind == "backward":
                    break
                if earlier.kind == "step":
                    break
                if earlier.kind == "zero_grad" and same_target(earlier, step) and _after_backward(events, earlier):
                    ctx.report(earlier.node, f"gradients are cleared after backward() and before "
                                             f"{step.receiver or 'optimizer'}.step(), so the step uses zero "
                                             f"gradients; move zero_grad() before backward() or after step()",
                               file=earlier.call.scope.file)
                    break


def _innermost(event):
    chain = loop_chain(event)
    return chain[-1] if chain else None


def _after_backward(events, zero_grad) -> bool:
    position = events.index(zero_grad)
    innermost = _innermost(zero_grad)
    for earlier in reversed(events[:position]):
        if _innermost(earlier) is not innermost:
            continue
        if earlier.kind == "backward":
            return True
        if earlier.kind in ("step", "zero_grad"):
            return False
    return False
