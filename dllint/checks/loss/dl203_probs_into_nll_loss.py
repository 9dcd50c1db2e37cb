"""DL203: softmax probabilities (not log-probabilities) reach NLLLoss."""

from dllint.context import CheckContext
from dllint.registry import rule


@rule("DL203")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    for scope in ctx.scopes:
        for loss, source in ctx.analysis.activations_into_loss(scope, "nll", "softmax"):
            ctx.report(loss.input, f"NLLLoss receives probabilities from {ctx.describe_source(source)} but "
                                   f"expects log-probabilities; use log_softmax (or CrossEntropyLoss on logits).")
