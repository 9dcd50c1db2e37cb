"""DL303: F.dropout inside a module without training=self.training stays on at evaluation."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import SAFE, UNSAFE, Fix, with_keyword
from dllint.lines import split_lines
from dllint.model import torch_api as api
from dllint.model.builder import descendants, dotted_name
from dllint.model.loops import in_loop
from dllint.model.project import instance_name
from dllint.registry import rule

# alpha_dropout and feature_alpha_dropout default to training=False: without the flag they never apply.
_OFF_BY_DEFAULT = {"alpha_dropout", "feature_alpha_dropout"}
# Methods a trainer calls only while training (Lightning's training_step): dropout there is never on at evaluation.
_TRAINING_ONLY = {"training_step", "train_step"}
# Position of the `training` parameter in F.dropout(input, p, training, inplace) and its siblings.
_TRAINING_POSITION = 2


@rule("DL303")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    training_only = {}
    for scope in ctx.scopes:
        if scope.cls is None or not analysis.is_module_class(scope.cls) or _runs_only_in_training(scope):
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
            if args and _drawn_at_random(analysis, args[0].value, scope, call.order):
                continue  # dropout on freshly drawn sampling noise: a sampling option, not an activation
            if id(scope.cls) not in training_only:
                training_only[id(scope.cls)] = _called_only_in_training(ctx, scope.cls)
            if training_only[id(scope.cls)]:
                continue  # a GAN discriminator called only from training steps: never run at evaluation
            owner = instance_name(scope) or "self"
            # A comment at the call may say that the dropout stays on at inference on purpose (Monte Carlo
            # dropout): switching it off is then a change of behaviour, offered only as an unsafe fix.
            safety = UNSAFE if _commented(ctx, call.node) else SAFE
            fix = Fix(safety, f"pass training={owner}.training", call.node,
                      with_keyword(call.node, "training", f"{owner}.training"))
            if function in _OFF_BY_DEFAULT:
                message = (f"F.{function}() defaults to training=False, so it never drops anything, not even in "
                           f"training; pass training={owner}.training (or use an nn.AlphaDropout module).")
            else:
                message = (f"F.{function}() defaults to training=True, so it keeps dropping activations after "
                           f"model.eval(); pass training={owner}.training (or use an nn.Dropout module).")
            ctx.report(call.node, message, fix=fix)


_RANDOM_FACTORIES = {"randn", "rand", "randn_like", "rand_like", "normal", "randint"}


def _drawn_at_random(analysis, expr, scope, order, depth=0) -> bool:
    """Is `expr` a random draw: torch.randn(...), scaled (`noise * temperature`), reshaped
    (`torch.randn(...).repeat(...)`), or returned by a helper that draws it?"""
    origins = list(analysis.origins(expr, scope, order))
    for origin in origins:
        value = origin.expr
        if depth > 4:
            return False
        if isinstance(value, cst.BinaryOperation):
            if not any(_drawn_at_random(analysis, side, origin.scope, origin.order, depth + 1)
                       for side in (value.left, value.right)):
                return False
        elif isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                isinstance(value.func.value, (cst.Call, cst.Name)) and \
                not analysis.torch_member(value.func, origin.scope, _RANDOM_FACTORIES):
            if not _drawn_at_random(analysis, value.func.value, origin.scope, origin.order, depth + 1):
                return False
        elif not (isinstance(value, cst.Call) and analysis.torch_member(value.func, origin.scope, _RANDOM_FACTORIES)):
            return False
    return bool(origins)


def _called_only_in_training(ctx: CheckContext, cls) -> bool:
    """Is every instance of the module class built in the project called only from training code (a
    `training_step`, or a function that steps an optimizer), and handed nowhere else?"""
    project = ctx.project
    init = project.method_of(cls, "__init__")
    sites = project.callers(init) if init is not None else []
    if not sites:
        return False
    for site in sites:
        scope = site.scope
        attributes = [name for name, d in scope.self_definitions if d.value is site.node] \
            if scope.cls is not None else []
        names = [name for name, ds in scope.definitions.items() if any(d.value is site.node for d in ds)]
        if attributes and not names:
            if not all(_attribute_used_in_training(ctx, scope.cls, a) for a in attributes):
                return False
        elif names and not attributes:
            if not all(_name_used_in_training(ctx, scope, n) for n in names):
                return False
        else:
            return False  # `Discriminator()` passed on directly: where it runs is not at hand
    return True


def _attribute_used_in_training(ctx: CheckContext, owner, attribute) -> bool:
    if ctx.project.read_from_outside(owner, attribute):
        return False  # `gan.discriminator(...)` somewhere else: where that runs is not at hand
    for method in owner.methods.values():
        spelled = f"{method.self_name}.{attribute}"
        calls = [c for c in method.calls if c.callee_text == spelled]
        if any((c.callee_text or "").startswith(spelled + ".") and c.method not in _BOOKKEEPING for c in method.calls):
            return False  # `self.discriminator.forward(...)`, `.predict(...)`: not a training call we can place
        reads = len(method.self_attribute_reads.get(attribute, [])) - method.member_reads.get(attribute, 0)
        if reads > len(calls):
            return False  # `self.discriminator` handed on or stored elsewhere
        if calls and not _trains(ctx, method):
            return False
    return True


# Methods of a module that neither run it nor hand it on.
_BOOKKEEPING = {"parameters", "named_parameters", "zero_grad", "train", "to", "cuda", "cpu", "apply", "state_dict",
                "load_state_dict", "requires_grad_"}


def _name_used_in_training(ctx: CheckContext, scope, name) -> bool:
    """`netD = Discriminator()` whose every call sits in a loop that steps an optimizer, and that is
    handed to nothing (no `evaluate(netD)`, no `netD.forward(...)`)."""
    events = ctx.analysis.events(scope)
    calls = []
    for call in scope.calls:
        if any(dotted_name(arg.value) == name for arg in call.node.args):
            return False
        if call.callee_text == name:
            calls.append(call)
        elif (call.callee_text or "").startswith(name + ".") and call.method not in _BOOKKEEPING:
            return False
    if not calls:
        return False
    if _runs_only_in_training(scope):
        return True
    return all(call.loops and any(e.kind == "step" for e in in_loop(events, call.loops[-1])) and
               not any(e.kind == "eval" for e in events) for call in calls)


def _trains(ctx: CheckContext, scope) -> bool:
    """A training step: Lightning's `training_step`, or a function that steps an optimizer and has no
    evaluation switch in it."""
    if _runs_only_in_training(scope):
        return True
    events = ctx.analysis.events(scope)
    return any(e.kind == "step" for e in events) and not any(e.kind == "eval" for e in events)


def _runs_only_in_training(scope) -> bool:
    """In `training_step` itself or in a function nested in it."""
    while scope is not None:
        if scope.name in _TRAINING_ONLY:
            return True
        scope = scope.parent
    return False


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
