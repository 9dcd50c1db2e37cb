"""DL201: probabilities reach CrossEntropyLoss, which applies log_softmax itself."""

from dllint.context import CheckContext, scope_source
from dllint.fixes import drop_activation
from dllint.registry import rule


@rule("DL201")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    for scope in ctx.scopes:
        for loss, source in ctx.analysis.activations_into_loss(scope, "cross_entropy", "softmax"):
            fix = drop_activation(loss.input, source.node, scope_source(ctx.file, scope), "softmax") \
                if source.scope is scope and source.model_class is None else None
            ctx.report(loss.input, f"Cross-entropy receives probabilities from {ctx.describe_source(source)} "
                                   f"but applies log_softmax itself, which flattens the gradients; "
                                   f"pass the logits and drop the softmax.", fix=fix)
