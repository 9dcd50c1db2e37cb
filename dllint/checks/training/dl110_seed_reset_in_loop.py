"""DL110: the global random seed is reset to the same value on every iteration of the training loop."""


import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import descendants
from dllint.model.facts import Scope
from dllint.model.loops import conditional_in_loop, in_loop
from dllint.registry import rule

# A training loop steps an optimizer: a loop that only backpropagates (to plot or inspect gradients)
# trains nothing, and re-seeding it per iteration is how runs are made comparable.
_TRAINING = ("step",)


@rule("DL110")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for call in scope.calls:
            if not call.loops or not _resets_seed(ctx, call):
                continue
            loop = next((l for l in reversed(call.loops)
                         if any(e.kind in _TRAINING for e in in_loop(events, l))), None)
            if loop is None or conditional_in_loop(call, loop) and _guard_varies(scope, call, loop):
                continue  # not a training loop, or reseeded only on some iterations (`if epoch == 0`)
            if any(e.kind == "optimizer_ctor" for e in in_loop(events, loop)):
                continue  # a fresh model and optimizer per run: the same seed per run is deliberate
            if not _same_every_iteration(ctx, call.node.args[0].value if call.node.args else None,
                                         scope, call.order, loop):
                continue
            name = call.callee_text or "the seed"
            ctx.report(call.node, f"{name}() resets the random generator to the same seed on every iteration of "
                                  f"this training loop, so every iteration repeats the same shuffles, dropout masks "
                                  f"and augmentations; seed once before the loop (or vary it: seed + epoch).")


def _guard_varies(scope: Scope, call, loop) -> bool:
    """Can an `if` inside the loop around the call be true on some iterations only (`if epoch == 0`,
    `if step % k == 0`)? A guard on configuration (`if args.deterministic:`) is true on all of them."""
    for condition in call.conditions[len(loop.conditions):]:
        if not isinstance(condition, cst.If):
            return True  # an else branch: its test is not at hand
        for node in descendants(condition.test):
            if isinstance(node, cst.Call) or isinstance(node, cst.Attribute) and \
                    api.LOOP_COUNTER_NAME.search(node.attr.value.lower()) or isinstance(node, cst.Name) and \
                    any(loop.contains(d.order) for d in scope.definitions.get(node.value, [])):
                return True
    return False


def _resets_seed(ctx: CheckContext, call) -> bool:
    """A call of a seeding function, or of a project helper that calls one."""
    if ctx.analysis.qualify(call.node.func, call.scope) in api.SEED_FUNCTIONS:
        return True
    target = ctx.project.callee(call)
    return isinstance(target, Scope) and any(
        ctx.analysis.qualify(inner.node.func, target) in api.SEED_FUNCTIONS for inner in target.calls)


def _same_every_iteration(ctx: CheckContext, seed, scope: Scope, order: int, loop) -> bool:
    """Is the seed argument known to be the same on every iteration of `loop` (literals, names set
    before the loop, attributes named as seeds)?"""
    if seed is None:
        return True  # set_seed() with the helper's default
    for node, node_scope, _ in ctx.analysis.dependencies(seed, scope, order, stop=_named_as_seed):
        if _named_as_seed(node, node_scope):
            continue  # args.seed, cfg.TRAIN.SEED: configuration, not looked into
        if isinstance(node, cst.Name):
            if node_scope is scope and any(loop.contains(d.order) or (d.kind == "for" and d.order == loop.start)
                                           for d in scope.definitions.get(node.value, [])):
                return False  # seed + epoch, seeds[run]
        elif isinstance(node, cst.Attribute):
            return False  # self.epoch, trainer.global_step: may change between iterations
        elif isinstance(node, cst.Call):
            if not (isinstance(node.func, cst.Name) and node.func.value in api.CONSTANT_PRESERVING_BUILTINS):
                return False  # time.time(), random.randint(...): a different seed each time
        elif isinstance(node, cst.Subscript):
            return False
    return True


def _named_as_seed(node, scope) -> bool:
    return isinstance(node, cst.Attribute) and "seed" in node.attr.value.lower()
