"""DL102: gradients are cleared between backward() and step(), so the step uses zeros."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model.builder import descendants
from dllint.model.facts import GradClear
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
                        ctx.report(cleared.node, f"Gradients are cleared after backward() and before "
                                                 f"{step.receiver or 'optimizer'}.step(), so the step uses zero "
                                                 f"gradients; move zero_grad() before backward() or after step().",
                                   file=cleared.call.scope.file)
                    break
                if earlier.kind == "zero_grad" and clears_gradients_for(ctx.analysis, earlier, step) and \
                        not (leaves_early(earlier.call) and not _shares_branch(earlier, step)) and \
                        not _clears_only_some(earlier.call):
                    cleared = earlier


def _clears_only_some(clear) -> bool:
    """`p.grad = None` for the parameters a condition picks (DINO freezing its last layer for an
    epoch): deliberate. A condition on the gradient itself (`if p.grad is not None`) still clears all."""
    if not isinstance(clear, GradClear) or not clear.loops:
        return False
    inside_loop = clear.conditions[len(clear.loops[-1].conditions):]
    return any(not _tests_gradient(condition) for condition in inside_loop)


def _tests_gradient(condition) -> bool:
    test = getattr(condition, "test", None)
    return test is not None and any(isinstance(node, cst.Attribute) and node.attr.value in ("grad", "requires_grad")
                                    for node in descendants(test))


def _same_iteration(earlier, step) -> bool:
    """`earlier` runs in the step's iteration: inside the same loops (or loops nested within them)."""
    step_chain = loop_chain(step)
    earlier_chain = loop_chain(earlier)
    return len(earlier_chain) >= len(step_chain) and all(a is b for a, b in zip(earlier_chain, step_chain))


def _shares_branch(first, second) -> bool:
    conditions = getattr(second.call, "conditions", ())
    return any(c in conditions for c in getattr(first.call, "conditions", ()))
