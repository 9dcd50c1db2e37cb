"""DL203: softmax probabilities (not log-probabilities) reach NLLLoss."""

from dllint.context import CheckContext
from dllint.registry import rule


@rule("DL203", "probs-into-nll-loss", "error",
      "softmax output is passed to NLLLoss, which expects log-probabilities")
def check(ctx: CheckContext) -> None:
    for scope in ctx.scopes:
        for loss in ctx.analysis.loss_calls(scope):
            if loss.kind != "nll":
                continue
            source = ctx.analysis.value_source(loss.input, scope, loss.call.order)
            if source is not None and source.kind == "softmax":
                ctx.report(loss.input, f"NLLLoss receives probabilities from {ctx.describe_source(source)} but "
                                       f"expects log-probabilities; use log_softmax (or CrossEntropyLoss on logits)")
