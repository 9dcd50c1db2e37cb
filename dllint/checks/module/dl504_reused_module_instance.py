"""DL504: one module object used as several layers ("variable reuse")."""

from typing import List

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.flow import Analysis, Instance
from dllint.model.layers import aliased_layer_calls, layers_shared_by_built_objects, may_hold_state, \
    registering_container_arguments
from dllint.model.loops import mutually_exclusive
from dllint.registry import rule


@rule("DL504")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # tests share a layer on purpose (e.g. to test weight-tying detection)
    analysis = ctx.analysis
    for scope in ctx.scopes:
        in_containers = registering_container_arguments(analysis, scope)
        for node, element, order in scope.list_repeats:
            instances = analysis.instances(element, scope, order)
            # Repeated inside nn.ModuleList / nn.Sequential, an object built from arguments (a block of
            # another library, a class the caller chose) is a module with weights too.
            built = isinstance(element, cst.Call) and any(not arg.keyword for arg in element.args)
            if _is_stateful(instances, analysis) or (id(node) in in_containers and built and may_hold_state(instances)):
                ctx.report(node, "[layer] * n repeats one module object n times, so every copy shares the same "
                                 "weights; build a new layer per position, e.g. [nn.Linear(...) for _ in range(n)].")
        for node, order in scope.comprehensions:
            element = node.elt
            if any(isinstance(f.target, cst.Name) and dotted_name(element) == f.target.value
                   for f in _for_clauses(node)):
                continue
            if _is_stateful(analysis.instances(element, scope, order), analysis):
                ctx.report(node, f"The comprehension repeats the one object {dotted_name(element)} instead of "
                                 f"creating a new layer per item; construct the layer inside the comprehension.")
        for call in scope.calls:
            container = analysis.torch_member(call.node.func, scope, api.LAYER_SEQUENCE_CONTAINERS)
            if container:
                _check_container_arguments(ctx, analysis, scope, call, container)
            elif call.method == "append" and call.loops and len(call.node.args) == 1:
                _check_append_in_loop(ctx, analysis, scope, call)
        if scope.name == "forward" and scope.cls is not None:
            _check_norm_reuse_in_forward(ctx, analysis, scope)
            _check_aliased_layers(ctx, analysis, scope)
        _check_norm_passed_per_block(ctx, analysis, scope)


def _for_clauses(node):
    clause = node.for_in
    while clause is not None:
        yield clause
        clause = clause.inner_for_in


def _is_stateful(instances: List[Instance], analysis: Analysis) -> bool:
    """A module with parameters or buffers (not an activation, pooling or dropout)."""
    if not instances:
        return False
    for instance in instances:
        if instance.project_class is not None:
            if not analysis.is_module_class(instance.project_class):
                return False
        elif instance.torch_class is None or not instance.torch_class.startswith("torch.nn"):
            return False
        elif instance.torch_name in api.STATELESS_MODULES or instance.torch_name in api.LOSS_CLASSES:
            return False
    return True


def _check_container_arguments(ctx, analysis, scope, call, container: str) -> None:
    args = [a.value for a in call.node.args if not a.star]
    if len(args) == 1 and isinstance(args[0], (cst.List, cst.Tuple)):
        args = [e.value for e in args[0].elements]
    seen = {}
    for arg in args:
        text = dotted_name(arg)
        if text is None:
            continue
        if text in seen and _is_stateful(analysis.instances(arg, scope, call.order), analysis):
            ctx.report(arg, f"nn.{container} receives {text} more than once: both positions are one layer with "
                            f"shared weights; create a separate instance for each position.")
            return
        seen[text] = arg


def _check_append_in_loop(ctx, analysis, scope, call) -> None:
    arg = call.node.args[0].value
    if not isinstance(arg, cst.Name):
        return
    loop = call.loops[-1]
    definitions = scope.definitions.get(arg.value, [])
    if not definitions or any(loop.contains(d.order) for d in definitions):
        return  # created inside the loop: a new object per iteration
    if _is_stateful(analysis.instances(arg, scope, call.order), analysis):
        ctx.report(arg, f"The loop appends the same object {arg.value} on every iteration, so all entries are one "
                        f"layer with shared weights; create the layer inside the loop.")


def _check_norm_reuse_in_forward(ctx, analysis, scope) -> None:
    calls_by_attribute = {}
    for call in scope.calls:
        if isinstance(call.node.func, cst.Attribute) and dotted_name(call.node.func.value) == scope.self_name:
            calls_by_attribute.setdefault(call.node.func.attr.value, []).append(call)
    for attribute, calls in calls_by_attribute.items():
        pair = next(((a, b) for a in calls for b in calls if a.order < b.order and _run_together(scope, a, b)
                     and _stacked(analysis, scope, a, b)), None)
        instances = analysis.instances(pair[0].node.func, scope, pair[0].order) if pair else []
        if instances and all(i.torch_name in api.NORMALIZATION_MODULES for i in instances):
            ctx.report(pair[1].node, f"Normalization layer self.{attribute} is applied at several depths of "
                                     f"forward, so one set of statistics and affine weights serves different "
                                     f"features; give each depth its own layer.")


def _run_together(scope, first, second) -> bool:
    """One forward runs both: not exclusive branches, `first` not in a branch that returns before `second`."""
    return not mutually_exclusive(first.conditions, second.conditions, scope.file) and not any(
        id(c) in scope.file.exiting_branches and all(c is not o for o in second.conditions) for c in first.conditions)


def _stacked(analysis, scope, first, second) -> bool:
    """Does the first call's output flow into the second (two depths of one path, not two Siamese views)?"""
    return any(node is first.node for node, _, _ in analysis.dependencies(second.node, scope, second.order))


def _check_aliased_layers(ctx, analysis, scope) -> None:
    for first, second, attribute, other in aliased_layer_calls(analysis, scope):
        if _stacked(analysis, scope, first, second) and \
                _is_stateful(analysis.instances(first.node.func, scope, first.order), analysis):
            ctx.report(second.node, f"self.{attribute} and self.{other} are one layer object applied at two "
                                    f"depths of forward, so they share weights; create a separate layer for "
                                    f"self.{attribute}.")


def _check_norm_passed_per_block(ctx, analysis, scope) -> None:
    """One normalization layer handed to every block built in a loop or comprehension: each block keeps
    it as its own layer, so all depths share one set of statistics and affine weights."""
    for call, argument, cls in layers_shared_by_built_objects(analysis, scope):
        instances = analysis.instances(argument, scope, call.order)
        if instances and all(i.torch_name in api.NORMALIZATION_MODULES for i in instances):
            ctx.report(argument, f"The one normalization layer {argument.value} is handed to every {cls.name} "
                                 f"built here, so all of them share its statistics and weights; build a new "
                                 f"norm layer per block.")
            return
