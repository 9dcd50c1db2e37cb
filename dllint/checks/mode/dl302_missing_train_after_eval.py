"""DL302: eval() inside the training loop, and train() never restores training mode."""

from dllint.context import CheckContext
from dllint.model.loops import in_loop, is_helper_local, loop_chain, mode_chosen_by_branch, receiver_at_site
from dllint.registry import rule
from dllint.model import modes


@rule("DL302")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for loop in scope.loops:
            inside = in_loop(events, loop)
            evals = [e for e in inside if e.kind == "eval" and _is_trained_model(analysis, scope, e, inside) and
                     not mode_chosen_by_branch(e, inside)]
            if not evals or not any(e.kind == "step" for e in inside):
                continue
            last_eval = evals[-1]
            position = inside.index(last_eval)
            # One iteration later: everything after the eval, then the loop body again from the top.
            after = inside[position + 1:]
            following = after + inside[:position]
            # Only training between the eval() and a step in the same iteration: kept in eval on purpose.
            # A step reached again only from the top of the next iteration is not what the eval() was for.
            if _trains_in_eval_mode_on_purpose(after):
                continue
            for index, event in enumerate(following):
                if event.kind == "train":
                    break
                if event.kind == "eval":
                    # Another eval() deliberately kept for training: the rest of its own iteration trains.
                    own_iteration = following[index + 1:len(after)] if index < len(after) else following[index + 1:]
                    if _trains_in_eval_mode_on_purpose(own_iteration):
                        break
                if event.kind == "step":
                    target = last_eval.receiver or "model"
                    ctx.report(last_eval.site, f"{target}.eval() runs inside the training loop but "
                                               f"{target}.train() is never called before the next "
                                               f"optimizer step, so training continues without dropout and with "
                                               f"frozen batch-norm; call {target}.train() at the start of each epoch.")
                    break


def _is_trained_model(analysis, scope, eval_event, inside) -> bool:
    """Skip eval() on frozen models (teacher, EMA) that never run a gradient-carrying forward here,
    also when a helper does the eval() on what it is given (`validate(model=ema.ema)`)."""
    receiver = receiver_at_site(eval_event)
    if receiver is None:
        return True
    if is_helper_local(receiver):
        return False  # a model the helper builds for itself (from a checkpoint) is not the one trained here
    for event in inside:
        if event.kind == "train" and (receiver_at_site(event) is None or modes.same_module(
                analysis, scope, receiver, eval_event.site_order, receiver_at_site(event), event.site_order)):
            return True
        if event.kind == "forward" and not event.call.no_grad:
            target = receiver_at_site(event)
            if target is None and event.helpers or target is not None and modes.same_module(
                    analysis, scope, receiver, eval_event.site_order, target, event.site_order):
                return True
    return False


def _trains_in_eval_mode_on_purpose(following) -> bool:
    """Nothing but training runs between an eval() and the next optimizer step: a backward, and every
    forward with gradients and in the loop that steps (a linear probe keeping its frozen backbone's
    batch-norm statistics). Evaluation in between (a no-grad forward, or one in another loop) means
    the eval() was for that evaluation."""
    step = next((e for e in following if e.kind in ("step", "train")), None)
    if step is None or step.kind == "train":
        return False
    before = following[:following.index(step)]
    steps_loop = _innermost_loop(step)
    return any(e.kind == "backward" for e in before) and all(
        not e.call.no_grad and _innermost_loop(e) is steps_loop for e in before if e.kind == "forward")


def _innermost_loop(event):
    chain = loop_chain(event)
    return chain[-1] if chain else None
