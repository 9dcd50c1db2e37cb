"""DL202: sigmoid output reaches BCEWithLogitsLoss, which applies sigmoid itself."""

from dllint.context import CheckContext, scope_source
from dllint.fixes import drop_activation
from dllint.registry import rule


@rule("DL202")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    for scope in ctx.scopes:
        for loss, source in ctx.analysis.activations_into_loss(scope, "bce_logits", "sigmoid"):
            fix = drop_activation(loss.input, source.node, scope_source(ctx.file, scope), "sigmoid") \
                if source.scope is scope and source.model_class is None else None
            ctx.report(loss.input, f"BCEWithLogits receives probabilities from {ctx.describe_source(source)} "
                                   f"and applies sigmoid a second time; pass the logits and drop the sigmoid.", fix=fix)
