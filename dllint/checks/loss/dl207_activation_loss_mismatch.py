"""DL207: an activation whose output the loss does not expect (the pairs DL201-DL205 leave out)."""

import libcst as cst

from dllint.context import CheckContext, scope_source
from dllint.fixes import drop_activation
from dllint.registry import rule

# (loss kind, activation of its input) -> what is wrong and what to do
_INPUT_MISMATCHES = {
    ("cross_entropy", "sigmoid"): "cross-entropy applies log_softmax to its input, so sigmoid outputs squeezed "
                                  "into (0, 1) leave it almost flat; pass the raw logits and drop the sigmoid",
    ("nll", "sigmoid"): "NLLLoss expects log-probabilities over the classes, not independent sigmoid outputs; "
                        "use log_softmax (or CrossEntropyLoss on the logits)",
    ("bce_logits", "softmax"): "BCEWithLogitsLoss applies sigmoid to its input, so softmax probabilities get "
                               "squashed a second time; pass the logits (and use CrossEntropyLoss if each "
                               "sample has one label)",
    ("kl_div", "softmax"): "KLDivLoss/kl_div expects log-probabilities as its input, not probabilities; pass "
                           "log_softmax of the logits",
    ("kl_div", "sigmoid"): "KLDivLoss/kl_div expects log-probabilities as its input, not probabilities; pass "
                           "the log of the distribution (log_softmax / logsigmoid)",
}


@rule("DL207")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for loss in analysis.loss_calls(scope):
            source = analysis.value_source(loss.input, scope, loss.call.order)
            problem = _INPUT_MISMATCHES.get((loss.kind, source.kind)) if source is not None else None
            if problem is not None:
                fix = None
                if loss.kind == "cross_entropy" and source.scope is scope and source.model_class is None:
                    fix = drop_activation(loss.input, source.node, scope_source(ctx.file, scope), "sigmoid")
                ctx.report(loss.input, f"The loss input comes from {ctx.describe_source(source)}: {problem}.",
                           fix=fix)
            if loss.kind == "kl_div" and loss.target is not None and not _log_target(analysis, loss.call):
                target = analysis.value_source(loss.target, scope, loss.call.order)
                if target is not None and target.kind in ("log_softmax", "log_sigmoid"):
                    ctx.report(loss.target, f"The KL target comes from {ctx.describe_source(target)} "
                                            f"(log-probabilities) but log_target=True is not set, so it is read as "
                                            f"probabilities; pass log_target=True or the probabilities themselves.")


def _log_target(analysis, call) -> bool:
    """Is log_target set (to anything but False) on the call, or on the KLDivLoss module it calls?"""
    calls = [call.node] + [i.ctor for i in analysis.instances(call.node.func, call.scope, call.order) if i.ctor]
    return any(arg.keyword is not None and arg.keyword.value == "log_target" and
               not (isinstance(arg.value, cst.Name) and arg.value.value == "False") or arg.star == "**"
               for node in calls for arg in node.args)
