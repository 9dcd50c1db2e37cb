"""DL404: the autograd graph is cut inside forward, or a loss term is computed on parameters' .data."""

import libcst as cst

from dllint.context import CheckContext, scope_source
from dllint.model import torch_api as api
from dllint.model.builder import descendants, dotted_name
from dllint.model.facts import ClassFacts
from dllint.registry import rule


@rule("DL404")
def check(ctx: CheckContext) -> None:
    for cls in ctx.file.all_class_list:
        forward = cls.methods.get("forward")
        if forward is not None and ctx.analysis.is_module_class(cls):
            _cut_in_forward(ctx, cls, forward)
    for scope in ctx.scopes:
        for loss, order, _ in ctx.analysis.backpropagated_losses(scope):
            _penalty_on_data(ctx, scope, loss, order)


def _cut_in_forward(ctx: CheckContext, cls: ClassFacts, forward) -> None:
    """A layer's output goes through .numpy()/.tolist()/.data and back into a tensor on the way to the
    returned value, and reaches it no other way."""
    source = scope_source(forward.file, forward)
    if "self.training" in source or "no_grad" in source or "inference_mode" in source:
        return  # inference branches and deliberate no-grad updates
    analysis = ctx.analysis
    for order, value in forward.returns:
        cuts, live = [], set()
        is_cut = lambda node, where: _is_round_trip(analysis, node, where)  # noqa: E731
        for node, node_scope, node_order in analysis.dependencies(value, forward, order, stop=is_cut):
            if is_cut(node, node_scope):
                cuts.append((node, node_scope, node_order))
            elif _layer_call(ctx, cls, node, node_scope):
                live.add(dotted_name(node.func))
        for node, node_scope, node_order in cuts:
            behind = {dotted_name(n.func) for n, s, _ in analysis.dependencies(node, node_scope, node_order)
                      if _layer_call(ctx, cls, n, s)}
            starved = sorted(behind - live)
            if starved:
                ctx.report(node, f"The output of {starved[0]} leaves autograd here (.numpy()/.tolist()/.data and "
                                 f"back into a tensor) on its way to what forward returns, so {starved[0]} and "
                                 f"everything before it get no gradient; keep the computation in torch operations.",
                           file=forward.file)
                return


def _is_round_trip(analysis, node, scope) -> bool:
    if isinstance(node, cst.Attribute) and node.attr.value == "data":
        return True
    if not isinstance(node, cst.Call):
        return False
    if isinstance(node.func, cst.Attribute) and node.func.attr.value in api.ROUND_TRIP_METHODS:
        return True
    qualified = analysis.qualify(node.func, scope)
    return bool(api.torch_member(qualified, api.ROUND_TRIP_FUNCTIONS)) or \
        (qualified or "").endswith("autograd.Variable") and bool(node.args) and \
        isinstance(node.args[0].value, cst.Attribute) and node.args[0].value.attr.value == "data"


def _layer_call(ctx: CheckContext, cls: ClassFacts, node, scope) -> bool:
    """`self.encoder(x)` where self.encoder is a layer with parameters."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute) or \
            not isinstance(node.func.value, cst.Name) or node.func.value.value != scope.self_name:
        return False
    for instance in ctx.analysis.instances(node.func, scope, 0):
        if instance.project_class is not None and ctx.analysis.is_module_class(instance.project_class):
            return True
        name = instance.torch_name
        if name and instance.torch_class.startswith("torch.nn.") and name not in api.STATELESS_MODULES:
            return True
    return False


def _penalty_on_data(ctx: CheckContext, scope, loss, order) -> None:
    """`loss = ce + lam * sum(p.data.norm() for p in model.parameters())`: the term is a constant."""
    for node, node_scope, node_order in ctx.analysis.dependencies(loss, scope, order):
        if isinstance(node, (cst.GeneratorExp, cst.ListComp)):
            names = _parameter_targets(node)
            for inner in descendants(node.elt):
                if _reads_data_of(inner, names):
                    _report_penalty(ctx, inner, node_scope)
                    return
        elif isinstance(node, cst.Attribute) and node.attr.value == "data" and \
                _is_parameter(node_scope, node.value, node_order):
            _report_penalty(ctx, node, node_scope)
            return


def _parameter_targets(comprehension) -> set:
    names, clause = set(), comprehension.for_in
    while clause is not None:
        iterated = clause.iter
        if isinstance(iterated, cst.Call) and isinstance(iterated.func, cst.Attribute) and \
                iterated.func.attr.value in api.PARAMETER_ITERATORS:
            target = clause.target
            elements = [e.value for e in target.elements] if isinstance(target, cst.Tuple) else [target]
            names |= {e.value for e in elements[-1:] if isinstance(e, cst.Name)}
        clause = clause.inner_for_in
    return names


def _reads_data_of(node, names) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == "data" and \
        isinstance(node.value, cst.Name) and node.value.value in names


def _is_parameter(scope, expr, order) -> bool:
    """A loop variable over `model.parameters()`, or an attribute named like a weight (`self.fc.weight`)."""
    if isinstance(expr, cst.Attribute):
        return expr.attr.value in ("weight", "bias")
    if not isinstance(expr, cst.Name):
        return False
    for definition in scope.definitions.get(expr.value, []):
        loop = definition.node
        if definition.kind == "for" and definition.order < order and isinstance(loop, cst.For) and \
                isinstance(loop.iter, cst.Call) and isinstance(loop.iter.func, cst.Attribute) and \
                loop.iter.func.attr.value in api.PARAMETER_ITERATORS:
            return True
    return False


def _report_penalty(ctx: CheckContext, node, scope) -> None:
    ctx.report(node, "This loss term reads the parameters through .data, which autograd does not track, so it "
                     "adds a constant to the loss and its gradient is zero; use the parameter itself (p, not p.data).",
               file=scope.file)
