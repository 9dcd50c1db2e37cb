"""DL303: F.dropout inside a module without training=self.training stays on at evaluation."""

import libcst as cst

from dllint.model.draws import drawn_at_random
from dllint.model.usage import called_only_in_training, runs_only_in_training
from dllint.context import CheckContext
from dllint.fixes import SAFE, UNSAFE, Fix, with_keyword
from dllint.lines import split_lines
from dllint.model import torch_api as api
from dllint.model.builder import descendants, dotted_name
from dllint.model.project import instance_name
from dllint.registry import rule

# Position of the `training` parameter in F.dropout(input, p, training, inplace) and its siblings.
_TRAINING_POSITION = 2


@rule("DL303")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        if scope.cls is None or not analysis.is_module_class(scope.cls) or runs_only_in_training(scope):
            continue
        for call in scope.calls:
            function = analysis.torch_member(call.node.func, scope, api.FUNCTIONAL_DROPOUTS)
            if not function or ".functional" not in (analysis.qualify(call.node.func, scope) or ""):
                continue
            args = call.node.args
            if any(a.star for a in args) or any(a.keyword is not None and a.keyword.value == "training" for a in args):
                continue
            if len([a for a in args if a.keyword is None]) > _TRAINING_POSITION:
                continue
            if any(_tests_training_flag(condition, instance_name(scope)) for condition in call.conditions):
                continue  # `if self.training: x = F.dropout(x, p)` runs only in training
            if args and drawn_at_random(analysis, args[0].value, scope, call.order):
                continue  # dropout on freshly drawn sampling noise: a sampling option, not an activation
            if called_only_in_training(analysis, scope.cls):
                continue  # a GAN discriminator called only from training steps: never run at evaluation
            owner = instance_name(scope) or "self"
            # A comment at the call may say that the dropout stays on at inference on purpose (Monte Carlo
            # dropout): switching it off is then a change of behaviour, offered only as an unsafe fix.
            safety = UNSAFE if _commented(ctx, call.node) else SAFE
            fix = Fix(safety, f"pass training={owner}.training", call.node,
                      with_keyword(call.node, "training", f"{owner}.training"))
            if function in api.DROPOUTS_OFF_BY_DEFAULT:
                message = (f"F.{function}() defaults to training=False, so it never drops anything, not even in "
                           f"training; pass training={owner}.training (or use an nn.AlphaDropout module).")
            else:
                message = (f"F.{function}() defaults to training=True, so it keeps dropping activations after "
                           f"model.eval(); pass training={owner}.training (or use an nn.Dropout module).")
            ctx.report(call.node, message, fix=fix)


def _tests_training_flag(condition, owner) -> bool:
    """An `if` whose test reads `self.training` (not its else branch)."""
    test = getattr(condition, "test", None)
    return test is not None and owner is not None and any(
        isinstance(node, cst.Attribute) and node.attr.value == "training" and dotted_name(node.value) == owner
        for node in descendants(test))


def _commented(ctx: CheckContext, node) -> bool:
    """Is there a comment on the call's line or on the line just above it?"""
    lines = split_lines(ctx.file.source)
    number = ctx.line(node)
    nearby = lines[max(number - 2, 0):number]
    return any("#" in line and line.split("#", 1)[0].count('"') % 2 == 0 and
               line.split("#", 1)[0].count("'") % 2 == 0 for line in nearby)
