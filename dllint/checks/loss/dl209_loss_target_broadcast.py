"""DL209: a regression loss between an (N, 1) prediction and an (N,) target, which broadcasts to (N, N)."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.flow import bound_argument, strip_device_moves
from dllint.registry import rule

_DEPTH = 6
COLUMN, VECTOR = "(N, 1)", "(N,)"


@rule("DL209")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_module:
        return  # a test's own toy model exercises mechanics (a strategy runs a step), not training quality
    for scope in ctx.scopes:
        for loss in ctx.analysis.loss_calls(scope):
            if loss.kind not in api.REGRESSION_LOSS_KINDS or loss.target is None:
                continue
            prediction = _shape(ctx, loss.input, scope, loss.call.order, 0)
            target = _shape(ctx, loss.target, scope, loss.call.order, 0)
            if prediction and target and prediction != target:
                fix_side = "prediction.squeeze(1)" if prediction == COLUMN else "prediction.unsqueeze(1)"
                ctx.report(loss.call.node, f"The prediction has shape {prediction} and the target {target}, so the "
                                           f"loss broadcasts them to (N, N) and trains on every pair of samples; "
                                           f"make the shapes equal ({fix_side}, or reshape the target).")


def _shape(ctx: CheckContext, expr, scope, order, depth):
    """COLUMN, VECTOR or None (unknown) for a batch-sized tensor expression."""
    if expr is None or depth > _DEPTH:
        return None
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        method, inner = expr.func.attr.value, expr.func.value
        args = [a.value for a in expr.args]
        if method in api.SHAPE_KEEPING_METHODS:
            return _shape(ctx, inner, scope, order, depth + 1)
        if method == "flatten" and not args:
            return VECTOR
        if method == "squeeze" and (not args or _int(args[0]) in (1, -1)):
            # squeeze() leaves (N, 3) alone: only a known (N, 1) becomes (N,)
            return VECTOR if _shape(ctx, inner, scope, order, depth + 1) == COLUMN else None
        if method in ("view", "reshape") and [_int(a) for a in args] in ([-1], [-1, 1]):
            return VECTOR if len(args) == 1 else COLUMN
        if method == "unsqueeze" and args and _int(args[0]) in (1, -1) and \
                _shape(ctx, inner, scope, order, depth + 1) == VECTOR:
            return COLUMN
    if isinstance(expr, cst.Call):
        factory = ctx.analysis.torch_member(expr.func, scope, api.SHAPED_TENSOR_FACTORIES)
        if factory:
            sizes = [a.value for a in expr.args if a.keyword is None]
            if len(sizes) == 1 and isinstance(sizes[0], (cst.Tuple, cst.List)):
                sizes = [e.value for e in sizes[0].elements]
            return VECTOR if len(sizes) == 1 else COLUMN if len(sizes) == 2 and _int(sizes[1]) == 1 else None
        if ctx.analysis.torch_member(expr.func, scope, api.TENSOR_CONVERSIONS) and expr.args:
            return _column_shape(expr.args[0].value)
        return _model_output(ctx, expr, scope, order)
    if isinstance(expr, cst.Name):
        found = {_batch_element(ctx, where, d, depth) if d.kind == "for" else
                 _shape(ctx, _element(d), where, d.order, depth + 1) if d.kind == "assign" else None
                 for where, d in ctx.analysis.reaching(scope, expr.value, order)}
        return found.pop() if len(found) == 1 else None
    return None


def _element(definition):
    """The value a name gets: `targets` in `features, targets = torch.randn(n, 8), torch.randn(n)`."""
    value, path = definition.value, definition.unpack_path
    for index in path:
        if not isinstance(value, (cst.Tuple, cst.List)) or index >= len(value.elements):
            return None
        value = value.elements[index].value
    return value


def _batch_element(ctx: CheckContext, scope, definition, depth):
    """The shape of `y` in `for x, y in DataLoader(TensorDataset(X, Y))`: Y's shape."""
    loop = next((l for l in scope.loops if l.start == definition.order), None)
    if loop is None or not definition.unpack_path:
        return None
    path = definition.unpack_path
    if isinstance(loop.iter_expr, cst.Call) and dotted_name(loop.iter_expr.func) == "enumerate":
        path = path[1:] if path[0] == 1 else ()
    iterable = ctx.analysis.loop_iterable(loop)
    for loader in ctx.analysis.instances(iterable, scope, loop.start):
        if loader.torch_name not in api.DATALOADER_CLASSES or loader.ctor is None or len(path) != 1:
            continue
        dataset = bound_argument(loader.ctor, "dataset", 0)
        for data in ctx.analysis.instances(dataset, loader.scope, 0):
            if data.torch_name == "TensorDataset" and data.ctor is not None and path[0] < len(data.ctor.args):
                site = ctx.analysis.call_site(data.ctor, data.scope)
                order = site.order if site is not None else data.scope.end
                return _shape(ctx, data.ctor.args[path[0]].value, data.scope, order, depth + 1)
    return None


def _column_shape(value):
    """`df["price"].values` is (N,), `df[["price"]].values` is (N, 1) (through .values, .to_numpy(), .astype())."""
    while isinstance(value, (cst.Call, cst.Attribute)):
        if isinstance(value, cst.Call):
            value = value.func
        elif value.attr.value in ("values", "to_numpy", "astype"):
            value = value.value
        else:
            return None
    index = value.slice[0].slice if isinstance(value, cst.Subscript) and len(value.slice) == 1 else None
    key = index.value if isinstance(index, cst.Index) else None
    if isinstance(key, cst.SimpleString):
        return VECTOR
    if isinstance(key, cst.List) and len(key.elements) == 1 and isinstance(key.elements[0].value, cst.SimpleString):
        return COLUMN
    return None


def _model_output(ctx: CheckContext, call: cst.Call, scope, order):
    """COLUMN when the model called ends in nn.Linear(k, 1) (its forward's last layer, or a Sequential's)."""
    for instance in ctx.analysis.instances(call.func, scope, order):
        layer = None
        if instance.torch_name == "Sequential" and instance.ctor is not None and instance.ctor.args and \
                not instance.ctor.args[-1].star:
            layer, layer_scope = instance.ctor.args[-1].value, instance.scope
        elif instance.project_class is not None:
            forward = ctx.project.method_of(instance.project_class, "forward")
            returns = forward.returns if forward is not None else []
            if len(returns) == 1 and isinstance(strip_device_moves(returns[0][1]), cst.Call):
                layer, layer_scope = strip_device_moves(returns[0][1]).func, forward
        if layer is not None:
            for inner in ctx.analysis.instances(layer, layer_scope, layer_scope.end):
                if inner.torch_name == "Linear" and inner.ctor is not None and \
                        _int(bound_argument(inner.ctor, "out_features", 1)) == 1:
                    return COLUMN
    return None


def _int(expr):
    if isinstance(expr, cst.Integer):
        return int(expr.value)
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus) and \
            isinstance(expr.expression, cst.Integer):
        return -int(expr.expression.value)
    return None
