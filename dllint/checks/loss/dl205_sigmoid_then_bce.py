"""DL205: sigmoid followed by BCELoss instead of BCEWithLogitsLoss on the logits."""

from dllint.context import CheckContext
from dllint.registry import rule


@rule("DL205")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    for scope in ctx.scopes:
        for loss, source in ctx.analysis.activations_into_loss(scope, "bce", "sigmoid"):
            ctx.report(loss.input, f"BCELoss receives probabilities from {ctx.describe_source(source)}: "
                                   f"sigmoid saturates and log(0) is clamped, losing gradient for confident "
                                   f"mistakes; feed the logits to BCEWithLogitsLoss instead.")
