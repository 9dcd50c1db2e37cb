"""DL106: a DistributedSampler iterated epoch after epoch without set_epoch()."""

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.flow import bound_argument
from dllint.model.loops import in_loop
from dllint.registry import rule



@rule("DL106")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for scope in ctx.scopes:
        events = analysis.events(scope)
        for loop in scope.loops:
            loader = analysis.loop_iterable(loop)
            if loader is None or not _has_distributed_sampler(analysis, loader, scope, loop.start):
                continue
            if any(e.kind == "set_epoch" for e in events if e.site_order < loop.start or loop.contains(e.site_order)):
                continue
            if loop.parent is not None:
                epoch_loops = [loop.parent]
                epoch_events = [in_loop(events, loop.parent)]
            else:
                callers = [c for c in analysis.project.callers(scope) if c.loops]
                epoch_loops = [c.loops[-1] for c in callers]
                epoch_events = [in_loop(analysis.events(c.scope), c.loops[-1]) for c in callers]
            if not epoch_loops:
                continue
            if any(any(e.kind == "set_epoch" for e in found) for found in epoch_events):
                continue
            ctx.report(loader, "This DistributedSampler loader is iterated every epoch but set_epoch(epoch) is "
                               "never called, so every epoch sees the same shuffled order; call "
                               "sampler.set_epoch(epoch) at the start of each epoch.")


def _has_distributed_sampler(analysis, loader, scope, order) -> bool:
    # A loader or sampler chosen on one branch (`if args.distributed: sampler = DistributedSampler(ds)`,
    # `else: sampler = None`) is distributed on the runs that take that branch.
    for instance in analysis.instances(loader, scope, order, any_branch=True):
        if instance.torch_name not in api.DATALOADER_CLASSES or instance.ctor is None:
            continue
        ctor_call = analysis.call_site(instance.ctor, instance.scope)
        if ctor_call is None:
            continue
        for sampler in (bound_argument(instance.ctor, "sampler", 3), bound_argument(instance.ctor, "batch_sampler", 4)):
            if sampler is not None and _distributed_sampler_within(analysis, sampler, instance.scope, ctor_call.order):
                return True
    return False


def _distributed_sampler_within(analysis, sampler, scope, order, depth=0) -> bool:
    """A DistributedSampler that shuffles, given directly or wrapped in a batch sampler
    (`BatchSampler(DistributedSampler(ds), 32, drop_last=True)`)."""
    for found in analysis.instances(sampler, scope, order, any_branch=True):
        # set_epoch only re-seeds the shuffle: a sampler built with shuffle=False has nothing to re-seed.
        if found.torch_name in api.DISTRIBUTED_SAMPLERS and not _shuffle_off(found.ctor):
            return True
        if found.torch_name in api.BATCH_SAMPLERS and found.ctor is not None and depth < 2:
            inner = bound_argument(found.ctor, "sampler", 0)
            inner_call = analysis.call_site(found.ctor, found.scope) if found.scope is not None else None
            if inner is not None and inner_call is not None and \
                    _distributed_sampler_within(analysis, inner, found.scope, inner_call.order, depth + 1):
                return True
    return False


def _shuffle_off(ctor) -> bool:
    shuffle = bound_argument(ctor, "shuffle", 3) if ctor is not None else None
    return getattr(shuffle, "value", None) == "False"
