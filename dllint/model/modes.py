"""What is known of a model's training mode: evidence that it is in training mode, or not, and
evidence that code running it is an evaluation."""

from __future__ import annotations

from typing import Iterable, List, Optional, Set

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import descendants, dotted_name
from dllint.model.facts import ClassFacts, Loop, Scope
from dllint.model.flow import Analysis, Event, bound_argument
from dllint.model.loops import argument_for, collection_iterated, mode_switch_before, related_receivers


def is_fresh_module(analysis: Analysis, expr: cst.BaseExpression, scope: Scope, order: int) -> bool:
    """Is `expr` built by an nn.Module constructor (a project module class or a torch.nn layer)?
    A freshly built module is in training mode; one from from_pretrained() or a caller may not be."""
    for instance in analysis.instances(expr, scope, order):
        if instance.project_class is not None and analysis.is_module_class(instance.project_class):
            return True
        if instance.torch_class and instance.torch_class.startswith("torch.nn."):
            return True
    return False


def trains_attribute(analysis: Analysis, cls: ClassFacts, attribute: str) -> bool:
    """Does any method of `cls` (or its project bases) train: call backward or an optimizer step, or
    switch `self.<attribute>` (or the object itself) to training mode?"""
    for owner in [cls] + analysis.project.base_classes(cls):
        for method in owner.methods.values():
            self_name = method.self_name
            for event in analysis.events(method):
                if event.kind in ("backward", "step"):
                    return True
                if event.kind == "train" and event.receiver in (self_name, f"{self_name}.{attribute}"):
                    return True
    return False


def held_untrained(analysis: Analysis, scope: Scope, receiver: Optional[str], order: int) -> bool:
    """`self.unet(x)` in a method of a plain object (a sampling pipeline, a predictor) that never
    trains what it holds and did not build it: the model is in whatever mode it was handed over in,
    so nothing shows that it is in training mode."""
    cls, self_name = scope.cls, scope.self_name
    if cls is None or self_name is None or analysis.is_module_class(cls):
        return False
    if not receiver or not receiver.startswith(self_name + "."):
        return False
    attribute = receiver[len(self_name) + 1:].split(".", 1)[0]
    if trains_attribute(analysis, cls, attribute):
        return False
    return not any(definition.value is not None and
                   is_fresh_module(analysis, definition.value, def_scope, definition.order)
                   for def_scope, definition in analysis.attribute_definitions(cls, attribute))


TRAIN, EVAL = "train", "eval"



def _combine(modes: Iterable[Optional[str]]) -> Optional[str]:
    """train when any way in is known to train; eval when every way in is eval; else unknown."""
    modes = list(modes)
    if TRAIN in modes:
        return TRAIN
    if modes and all(m == EVAL for m in modes):
        return EVAL
    return None


def _bool_value(expr: Optional[cst.BaseExpression]) -> Optional[bool]:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


def class_sets_own_mode(analysis: Analysis, cls: ClassFacts) -> Optional[str]:
    """eval when the class's constructor (or a base's) puts the object itself in eval mode."""
    for owner in [cls] + analysis.project.base_classes(cls):
        init = owner.methods.get("__init__")
        if init is None or init.self_name is None:
            continue
        for call in init.calls:
            mode = _self_switch(call, init)
            if mode is not None:
                return mode
    return None


def _self_switch(call, method: Scope, bound_call: Optional[cst.Call] = None) -> Optional[str]:
    """The mode `self.eval()` / `self.train(flag)` in `method` sets; with `bound_call` (a call of
    `method`), a flag that is one of its parameters is read from that call."""
    node = call.node
    if not isinstance(node.func, cst.Attribute) or dotted_name(node.func.value) != method.self_name:
        return None
    name = node.func.attr.value
    if name == "eval" and not node.args:
        return EVAL
    if name != "train":
        return None
    if not node.args:
        return TRAIN
    argument = node.args[0].value
    negated = False
    while isinstance(argument, cst.UnaryOperation) and isinstance(argument.operator, cst.Not):
        argument, negated = argument.expression, not negated
    flag = _bool_value(argument)
    if flag is None and isinstance(argument, cst.Name) and bound_call is not None and \
            argument.value in method.params:
        position = method.params.index(argument.value) - 1
        passed = bound_argument(bound_call, argument.value, position)
        flag = _bool_value(passed)
        if flag is None and passed is None:
            default = next((d.value for d in method.definitions.get(argument.value, []) if d.kind == "param"), None)
            flag = _bool_value(default)
    if flag is None:
        return None
    return TRAIN if flag != negated else EVAL


def method_mode_switch(analysis: Analysis, scope: Scope, call) -> Optional[str]:
    """`policy.set_training_mode(False)`: a method of the model's class (found from how the object was
    built, or among the module classes this file defines or imports) that switches the object
    itself: the mode it sets at this call."""
    node = call.node
    if not isinstance(node.func, cst.Attribute) or node.func.attr.value in ("eval", "train"):
        return None
    name = node.func.attr.value
    methods = []
    for instance in analysis.instances(node.func.value, scope, call.order):
        if instance.project_class is not None:
            method = analysis.project.method_of(instance.project_class, name)
            if method is not None:
                methods.append(method)
    if not methods:
        methods = [m for m in visible_mode_methods(analysis, scope.file).get(name, [])]
    modes = set()
    for method in methods:
        switched = [mode for inner in method.calls for mode in [_self_switch(inner, method, node)] if mode]
        if not switched:
            return None
        modes.add(switched[-1])
    return modes.pop() if len(modes) == 1 else None


def visible_mode_methods(analysis: Analysis, facts) -> dict:
    """Methods of the nn.Module classes a file defines or imports (with their bases) that switch the
    object's own mode, by name."""
    def compute(facts):
        classes: List[ClassFacts] = list(facts.all_class_list)
        for local in facts.aliases:
            target = analysis.project.resolve_name(cst.Name(local), facts)
            if isinstance(target, ClassFacts):
                classes.append(target)
        found: dict = {}
        seen: Set[int] = set()
        pending = list(classes)
        while pending:
            cls = pending.pop()
            if id(cls) in seen:
                continue
            seen.add(id(cls))
            pending.extend(analysis.project.base_classes(cls))
            if not analysis.is_module_class(cls):
                continue
            for method_name, method in cls.methods.items():
                if method_name == "__init__" or method.self_name is None or method_name in ("train", "eval"):
                    continue
                if any(_self_switches_anything(c, method) for c in method.calls):
                    found.setdefault(method_name, []).append(method)
        return found
    return analysis.memo("visible_mode_methods", facts, compute)


def _self_switches_anything(call, method: Scope) -> bool:
    node = call.node
    return isinstance(node.func, cst.Attribute) and node.func.attr.value in ("eval", "train") and \
        dotted_name(node.func.value) == method.self_name


def value_mode(analysis: Analysis, scope: Scope, value: Optional[cst.BaseExpression], order: int,
               depth: int, used_as_module: bool = False) -> Optional[str]:
    """The mode of the module an expression produces: fresh from a constructor (training), from
    `from_pretrained()` or with `.eval()` chained (eval), or that of the module it wraps."""
    if value is None or depth < 0:
        return None
    while True:
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            attr = value.func.attr.value
            if attr == "eval" and not value.args:
                return EVAL
            if attr == "train":
                flag = _bool_value(value.args[0].value) if value.args else True
                return None if flag is None else (TRAIN if flag else EVAL)
            if attr == "from_pretrained":
                return EVAL
            if attr in api.SAME_MODULE_CALLS and attr not in ("unwrap_model", "unwrap", "prepare_model"):
                value = value.func.value
                continue
        if isinstance(value, cst.Call) and value.args and \
                api.last_component(dotted_name(value.func) or "") in api.SAME_MODULE_CALLS:
            value = value.args[0].value
            continue
        if isinstance(value, cst.Attribute) and value.attr.value in api.WRAPPED_MODULE_ATTRIBUTES:
            value = value.value
            continue
        break
    if isinstance(value, cst.Name):
        return name_mode(analysis, scope, value.value, order, depth - 1)
    if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name) and \
            value.value.value == scope.self_name:
        return attribute_mode(analysis, scope, value.value.value + "." + value.attr.value, depth - 1)
    if not isinstance(value, cst.Call):
        return None
    modes = []
    for instance in analysis.instances(value, scope, order):
        if instance.project_class is not None:
            if not analysis.is_module_class(instance.project_class):
                modes.append(None)
            else:
                modes.append(class_sets_own_mode(analysis, instance.project_class) or TRAIN)
        elif instance.torch_class and instance.torch_class.startswith("torch.nn."):
            modes.append(TRAIN)
        elif used_as_module and _library_constructor(analysis, instance):
            # A library's model constructor (`torchvision.models.resnet18()`, `timm.create_model()`)
            # returns a module in training mode, like any nn.Module constructor.
            modes.append(TRAIN)
        else:
            modes.append(None)
    return _combine(modes)


def _library_constructor(analysis: Analysis, instance) -> bool:
    qualified = instance.torch_class
    if qualified is None and instance.ctor is not None and instance.scope is not None:
        qualified = analysis.qualify(instance.ctor.func, instance.scope)
    return bool(qualified) and not _is_loading(qualified)


def _is_loading(qualified: str) -> bool:
    """Calls that restore a module in whatever mode it was saved (torch.load, a checkpoint loader)."""
    last = api.last_component(qualified).lower()
    return last.startswith(("load", "restore")) or last in ("deepcopy", "copy")


_MODULE_METHODS = ("parameters", "named_parameters", "to", "cuda", "state_dict", "load_state_dict", "modules",
                   "children", "train", "eval", "zero_grad", "requires_grad_", "apply", "half", "float")


def used_as_module(scope: Scope, name: str) -> bool:
    """Is `name` used as an nn.Module in the scope (its parameters read, moved to a device, switched)?"""
    return any(call.receiver_text == name and call.method in _MODULE_METHODS for call in scope.calls)


def name_mode(analysis: Analysis, scope: Scope, name: str, order: int, depth: int = 3) -> Optional[str]:
    """What is known of the mode of the module a local name (or parameter) holds at `order`, from
    how it was made or handed over: callers for a parameter, the list for a loop variable."""
    if depth < 0:
        return None
    iterated = scope.iterated_by(name, order)
    if iterated is not None:
        return collection_mode(analysis, scope, iterated, order, depth - 1)
    modes = []
    for def_scope, definition in analysis.reaching(scope, name, order):
        if definition.kind == "param":
            modes.append(parameter_mode(analysis, def_scope, name, depth - 1))
        elif definition.kind == "assign":
            value = _unpacked(definition.value, definition.unpack_path)
            modes.append(value_mode(analysis, def_scope, value, definition.order, depth - 1,
                                    used_as_module(def_scope, name)))
        else:
            modes.append(None)
    return _combine(modes)


def _unpacked(value: Optional[cst.BaseExpression], path) -> Optional[cst.BaseExpression]:
    """The element `a, b = X(), Y()` binds to a name (None when not a literal tuple)."""
    for index in path:
        if not isinstance(value, (cst.Tuple, cst.List)) or not isinstance(index, int) or \
                index >= len(value.elements) or isinstance(value.elements[index], cst.StarredElement):
            return None
        value = value.elements[index].value
    return value


def collection_mode(analysis: Analysis, scope: Scope, collection, order: int, depth: int) -> Optional[str]:
    while isinstance(collection, cst.Call) and collection.args and \
            dotted_name(collection.func) in ("enumerate", "zip", "list", "tuple", "reversed", "iter"):
        collection = collection.args[0].value
    if isinstance(collection, (cst.List, cst.Tuple)):
        return _combine(value_mode(analysis, scope, e.value, order, depth) for e in collection.elements)
    if isinstance(collection, cst.Name):
        modes = []
        for def_scope, definition in analysis.reaching(scope, collection.value, order):
            if definition.kind == "param":
                modes.append(parameter_mode(analysis, def_scope, collection.value, depth - 1, collection=True))
            elif definition.kind == "assign" and not definition.unpack_path:
                modes.append(collection_mode(analysis, def_scope, definition.value, definition.order, depth - 1))
            else:
                modes.append(None)
        return _combine(modes)
    if isinstance(collection, cst.Call):
        call = analysis.call_site(collection, scope)
        target = analysis.project.callee(call) if call is not None else None
        if isinstance(target, Scope) and target.returns:
            return _combine(collection_mode(analysis, target, value, return_order, depth - 1)
                            for return_order, value in target.returns)
    return None


def parameter_mode(analysis: Analysis, scope: Scope, name: str, depth: int, collection: bool = False) -> Optional[str]:
    """A parameter holds what its callers pass: training mode when a caller in the project is known
    to pass there a module in training mode that has (or may have) dropout or batch-norm."""
    modes = []
    for call in analysis.project.callers(scope):
        passed = argument_for(call.node, scope, name)
        if passed is None:
            modes.append(None)
            continue
        expression = cst.parse_expression(passed)
        mode = _passed_mode(analysis, call, passed, expression, depth, collection)
        if mode == TRAIN and not collection and \
                analysis.has_dropout_or_batchnorm(expression, call.scope, call.order) is False:
            mode = None  # in training mode, but its mode changes nothing
        modes.append(mode)
    return TRAIN if TRAIN in modes else (EVAL if modes and all(m == EVAL for m in modes) else None)


def _passed_mode(analysis: Analysis, call, passed: str, expression, depth: int, collection: bool) -> Optional[str]:
    events = analysis.events(call.scope)
    switch = _collection_switch_before(events, call.scope, call.order, passed) if collection else \
        mode_switch_before(events, call.order, passed, call.scope)
    if switch is not None:
        return switch.kind
    if collection:
        return collection_mode(analysis, call.scope, expression, call.order, depth)
    root = passed.split(".", 1)[0]
    if "." in passed and root == call.scope.self_name:
        return attribute_mode(analysis, call.scope, passed, depth)
    return name_mode(analysis, call.scope, root, call.order, depth)


def _collection_switch_before(events, scope: Scope, order: int, collection: str):
    """The last switch before `order` of the members of a list (`for member in models: member.eval()`)."""
    for event in reversed(events):
        if event.site_order < order and event.kind in ("eval", "train") and not event.helpers and \
                collection_iterated(scope, event.receiver, event.site_order) == collection:
            return event
    return None


def attribute_mode(analysis: Analysis, scope: Scope, receiver: str, depth: int = 3) -> Optional[str]:
    """`self.model` in a method: eval when the class's constructor puts it in eval mode and nothing
    of the class switches it back; training when the class trains it or builds it afresh."""
    cls, self_name = scope.cls, scope.self_name
    if cls is None or self_name is None or not receiver.startswith(self_name + "."):
        return None
    attribute = receiver[len(self_name) + 1:].split(".", 1)[0]
    if held_untrained(analysis, scope, receiver, scope.start):
        return None
    if trains_attribute(analysis, cls, attribute):
        return TRAIN
    modes = []
    for def_scope, definition in analysis.attribute_definitions(cls, attribute):
        modes.append(value_mode(analysis, def_scope, definition.value, definition.order, depth - 1))
    return _combine(modes)


def method_switch_before(analysis: Analysis, scope: Scope, order: int, receiver: Optional[str]):
    """(order, mode) of the last call before `order` of a method that switches `receiver` (or an
    object it belongs to) itself: `agent.set_training_mode(False)`."""
    if not receiver:
        return None
    found = None
    for call in scope.calls:
        if call.order >= order or not isinstance(call.node.func, cst.Attribute):
            continue
        target = dotted_name(call.node.func.value)
        if target is None or not related_receivers(target, receiver):
            continue
        mode = method_mode_switch(analysis, scope, call)
        if mode is not None:
            found = (call.order, mode)
    return found




def is_evaluation(analysis: Analysis, scope: Scope, loop: Loop) -> bool:
    """Is a no-grad loop that trains nothing an evaluation, rather than a pass that serves training
    (filling a memory bank, re-embedding a queue, collecting a rollout to learn from)? Evidence: the
    function is named as an evaluation, the loop draws from evaluation data (a validation or test
    loader), collects outputs into lists that no loss of the function learns from, or the function
    scores model outputs somewhere (a loss, a comparison or a metric in a loop that trains nothing)."""
    if api.is_eval_function_name(scope.name):
        return True
    iterated = dotted_name(analysis.loop_iterable(loop))
    if iterated and api.looks_like_eval_data(iterated):
        return True
    collected = {call.receiver_text for call in scope.calls if call.method == "append" and loop.contains(call.order)}
    learned_from = analysis.memo("names_learned_from", scope, lambda s: _names_learned_from(analysis, s))
    if collected and not collected & learned_from:
        return True  # outputs collected, as predictions are, and not learned from (a rollout buffer is)
    if analysis.memo("scores_outputs", scope, lambda s: _scores_outputs(analysis, s)):
        return True
    return not analysis.memo("file_trains", scope.file, lambda f: _file_trains(analysis, f))


def _names_learned_from(analysis: Analysis, scope: Scope) -> Set[str]:
    """Local names that a loss backpropagated in the scope is computed from (a rollout's lists)."""
    names: Set[str] = set()
    for loss, order, _ in analysis.backpropagated_losses(scope):
        for node, where, _ in analysis.dependencies(loss, scope, order):
            if where is scope and isinstance(node, cst.Name):
                names.add(node.value)
    return names


def decodes(analysis: Analysis, scope: Scope, loop: Loop, inside: List[Event]) -> bool:
    """Autoregressive decoding or iterative sampling, in a function that learns nothing: a name the
    model is given in the loop is redefined there from what the model returned
    (`idx = torch.cat((idx, next_token), dim=1)`). Generation is inference."""
    if analysis.backpropagated_losses(scope):
        return False
    for forward in inside:
        if forward.kind != "forward" or forward.helpers:
            continue
        for argument in forward.call.node.args:
            value = argument.value
            while isinstance(value, cst.Subscript):
                value = value.value
            if not isinstance(value, cst.Name):
                continue
            for definition in scope.definitions.get(value.value, []):
                if definition.kind == "assign" and loop.contains(definition.order) and any(
                        node is forward.call.node
                        for node, _, _ in analysis.dependencies(definition.value, scope, definition.order)):
                    return True
    return False


def single_pass_evaluations(analysis: Analysis, scope: Scope, events: List[Event]) -> List[Event]:
    """Forward passes outside any loop of a function that evaluates in one pass (`preds = model(x_val)`;
    `return accuracy(preds, y_val)`): the function is named as an evaluation, trains nothing, is called
    by the project (a framework's hook keeps its own mode), and each pass is given evaluation data or
    has its outputs scored (a loss, a metric, argmax / topk)."""
    if not api.is_eval_function_name(scope.name) or not analysis.project.callers(scope):
        return []
    if any(e.kind in ("backward", "step") for e in events) or analysis.backpropagated_losses(scope):
        return []
    passes = [e for e in events if e.kind == "forward" and not e.loops and not e.helpers]
    return [forward for forward in passes if _given_evaluation_data(forward) or _outputs_scored(analysis, scope, forward)]


def _given_evaluation_data(forward: Event) -> bool:
    return any(api.looks_like_eval_data(dotted_name(_subscripted(argument.value)))
               for argument in forward.call.node.args)


def _subscripted(value: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(value, cst.Subscript):
        value = value.value
    return value


def _outputs_scored(analysis: Analysis, scope: Scope, forward: Event) -> bool:
    """Is what the forward returned given to a loss or a metric later in the function?"""
    for call in scope.calls:
        if call.order <= forward.site_order:
            continue
        last = (call.callee_text or "").rsplit(".", 1)[-1]
        scoring = last in ("argmax", "topk") or api.looks_like_metric(last) or analysis.loss_kind(call) is not None
        if not scoring:
            continue
        inputs = [a.value for a in call.node.args]
        if isinstance(call.node.func, cst.Attribute):
            inputs.append(call.node.func.value)  # `logits.argmax(1)`
        if any(node is forward.node for value in inputs
               for node, _, _ in analysis.dependencies(value, scope, call.order)):
            return True
    return False


def _file_trains(analysis: Analysis, facts) -> bool:
    """Does anything in the file train (a backward or an optimizer step)? A file that does not is an
    inference script: what it runs under no_grad is its product."""
    for scope in facts.scopes:
        if any(e.kind in ("backward", "step") for e in analysis.events(scope)):
            return True
    return False


def _scores_outputs(analysis: Analysis, scope: Scope) -> bool:
    events = analysis.events(scope)
    training = [loop for loop in scope.loops
                if any(e.kind in ("backward", "step") and any(l is loop for l in e.loops) for e in events)]

    def trains(order: int) -> bool:
        return any(loop.contains(order) for loop in training)

    untrained = [loop for loop in scope.loops if loop not in training]
    if not untrained:
        return False
    for loss in analysis.loss_calls(scope):
        if not trains(loss.call.order) and any(l.contains(loss.call.order) for l in untrained):
            return True
    for call in scope.calls:
        if trains(call.order) or not any(l.contains(call.order) for l in untrained):
            continue
        last = (call.callee_text or "").rsplit(".", 1)[-1]
        if last in ("eq", "argmax", "topk") or api.looks_like_metric(last):
            return True
    for loop in untrained:
        if any(l.contains(loop.start) for l in training):
            continue
        if _has_equality(loop.node):
            return True
    return False


def _has_equality(node: cst.CSTNode) -> bool:
    # A walk of its own, not libcst.matchers: importing the matchers costs every dllint process 0.15 s.
    for comparison in (n for n in descendants(node) if isinstance(n, cst.Comparison)):
        # `predicted == labels`, not a step counter tested against a constant (`i % 10 == 0`)
        operands = [comparison.left] + [target.comparator for target in comparison.comparisons]
        if any(isinstance(target.operator, (cst.Equal, cst.NotEqual)) for target in comparison.comparisons) and \
                not any(isinstance(o, (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)) or
                        isinstance(o, cst.Name) and o.value in ("None", "True", "False") for o in operands):
            return True
    return False


def _wrapped_name(value: Optional[cst.BaseExpression]) -> Optional[str]:
    """`model` for `accelerator.unwrap_model(model)`, `model.module`, `DDP(model)`, `model.to(device)`."""
    while value is not None:
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                value.func.attr.value in api.SAME_MODULE_CALLS and \
                value.func.attr.value not in ("unwrap_model", "unwrap", "prepare_model"):
            value = value.func.value
        elif isinstance(value, cst.Call) and value.args and \
                api.last_component(dotted_name(value.func) or "") in api.SAME_MODULE_CALLS:
            value = value.args[0].value
        elif isinstance(value, cst.Attribute) and value.attr.value in api.WRAPPED_MODULE_ATTRIBUTES:
            value = value.value
        else:
            break
    return dotted_name(value) if isinstance(value, (cst.Name, cst.Attribute)) else None


def same_module_names(analysis: Analysis, scope: Scope, name: Optional[str], order: int) -> Set[str]:
    """Other names of the module `name` holds at `order` in the scope: what it unwraps or wraps
    (`unwrapped = accelerator.unwrap_model(model)`: `model`), following assignments."""
    names: Set[str] = set()
    pending = [name] if name and "." not in name else []
    while pending:
        current = pending.pop()
        definitions = analysis.reaching(scope, current, order)
        if not definitions or any(d.kind != "assign" or d.unpack_path or def_scope is not scope
                                  for def_scope, d in definitions):
            continue
        for _, definition in definitions:
            wrapped = _wrapped_name(definition.value)
            if wrapped and wrapped != current and wrapped not in names and wrapped != name:
                names.add(wrapped)
                if "." not in wrapped:
                    pending.append(wrapped)
    return names


def same_module(analysis: Analysis, scope: Scope, first: Optional[str], first_order: int,
                second: Optional[str], second_order: int) -> bool:
    """Could `first` and `second` (names in one scope) be the same module, one perhaps unwrapping the other?"""
    if related_receivers(first, second):
        return True
    return any(related_receivers(alias, second) for alias in same_module_names(analysis, scope, first, first_order)) or \
        any(related_receivers(first, alias) for alias in same_module_names(analysis, scope, second, second_order))
