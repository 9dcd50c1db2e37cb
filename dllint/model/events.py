"""Training actions in order: backward, optimizer and scheduler steps, zero_grad, mode switches and
forward passes of a scope, with helpers' actions expanded at their call; the roles of objects
(optimizer, scheduler, scaler); and which loops iterate over batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.builder import dotted_name
from dllint.model.call_arguments import bound_argument, strip_device_moves
from dllint.model.facts import CallSite, GradClear, Loop, Scope
from dllint.model.origins import MAX_DEPTH
from dllint.model.project import instance_name


HELPER_DEPTH = 2  # how many levels of helper calls are expanded into a caller's events


@dataclass(frozen=True)
class Event:
    """A training-relevant action, seen from the scope being analysed.

    `site` is the call in that scope that causes it (the action itself, or the
    helper call that performs it); `call` is where it really happens.
    """

    kind: str  # backward | step | zero_grad | eval | train | forward | scheduler_step | optimizer_ctor
    call: Union[CallSite, GradClear]
    site: cst.CSTNode
    site_order: int
    loops: Tuple[Loop, ...]  # loops of the analysed scope around the site
    inner_loops: Tuple[Loop, ...]  # loops inside helpers between the site and the action
    receiver: Optional[str]
    helpers: Tuple[Scope, ...] = ()
    detail: str = ""  # "scaler" for scaler.step(opt) / scaler.scale(loss).backward()

    @property
    def node(self) -> cst.CSTNode:
        return self.call.node

    @property
    def scope(self) -> Scope:
        return self.call.scope  # type: ignore[return-value]


_ITERATION_WRAPPERS = ("enumerate", "tqdm", "tqdm.tqdm", "iter", "zip", "tqdm.auto.tqdm", "progress_bar", "pbar")


class TrainingEvents:
    """Ordered training actions and batch loops (part of Analysis)."""

    # -- events ---------------------------------------------------------------------
    def events(self, scope: Scope, depth: int = HELPER_DEPTH) -> List[Event]:
        """Training actions of a scope in source order, with helpers' actions expanded at their call."""
        key = (id(scope), depth)
        cached = self._events.get(key)
        if cached is not None:
            return cached
        self._events[key] = []  # guards recursion
        result: List[Event] = []
        items: List[Tuple[int, object]] = [(c.order, c) for c in scope.calls]
        items += [(g.order, g) for g in scope.grad_clears]
        items.sort(key=lambda item: item[0])
        for order, item in items:
            if isinstance(item, GradClear):
                result.append(Event("zero_grad", item, item.node, order, item.loops, (), None))
                continue
            call: CallSite = item  # type: ignore[assignment]
            kind, receiver = self.classify_call(call)
            if kind is not None:
                result.append(Event(kind, call, call.node, order, call.loops, (), receiver,
                                    detail=self._detail(call, kind)))
                continue
            if depth > 0:
                target = self.callee(call)
                if isinstance(target, Scope) and target is not scope:
                    for inner in self.events(target, depth - 1):
                        result.append(Event(inner.kind, inner.call, call.node, order, call.loops,
                                            inner.loops + inner.inner_loops, inner.receiver,
                                            (target,) + inner.helpers, inner.detail))
        self._events[key] = result
        return result

    def _detail(self, call: CallSite, kind: str) -> str:
        func = call.node.func
        if kind == "step" and isinstance(func, cst.Attribute) and \
                self.object_role(func.value, call.scope, call.order) == "scaler":
            return "scaler"
        if kind == "backward" and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call) and \
                isinstance(func.value.func, cst.Attribute) and func.value.func.attr.value == "scale":
            return "scaler"
        return ""

    def classify_call(self, call: CallSite) -> Tuple[Optional[str], Optional[str]]:
        """The training action a call performs, and on what (receiver text). Asked once per call: a
        scope's events are listed for it and again for each caller that expands it as a helper."""
        return self.memo("classify_call", call, self._classify_call)  # type: ignore[no-any-return]

    def _classify_call(self, call: CallSite) -> Tuple[Optional[str], Optional[str]]:
        method, receiver = call.method, call.receiver_text
        node, scope = call.node, call.scope
        if method == "backward":
            qualified = self.qualify(node.func, scope)
            if qualified is not None and qualified != "torch.autograd.backward":
                return None, None  # e.g. torch.distributed.autograd.backward: context-local gradients
            return "backward", receiver
        if method == "manual_backward":
            return "backward", receiver
        if method == "zero_grad":
            return "zero_grad", receiver
        if method is None and call.callee_text == "zero_grad":
            return "zero_grad", None  # a helper that clears the parameters it is given: zero_grad(model_params)
        if method == "set_epoch":
            return "set_epoch", receiver
        if method in ("update", "unscale_") and self.object_role(node.func.value, scope, call.order) == "scaler":
            return ("scaler_update" if method == "update" else "unscale"), receiver
        if method in ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm"):
            return "clip_grad", receiver
        if method == "step":
            role = self.object_role(node.func.value, scope, call.order)  # type: ignore[attr-defined]
            if role == "optimizer":
                return "step", receiver
            if role == "scaler" and node.args:
                return "step", dotted_name(node.args[0].value)
            if role == "scheduler":
                return "scheduler_step", receiver
            return None, None
        if method in ("eval", "train"):
            receiver = dotted_name(strip_device_moves(node.func.value))  # type: ignore[attr-defined]
        if method in ("eval", "train") and receiver and not node.args or (
                receiver and method == "train" and len(node.args) == 1 and _is_bool(node.args[0].value)):
            if not api.looks_like_model(receiver) and receiver != instance_name(scope) and \
                    not self.is_model_expr(node.func.value, scope, call.order) and \
                    scope.iterated_by(receiver, call.order) is None:  # `for member in ensemble: member.eval()`
                return None, None
            if method == "train" and node.args and _is_false(node.args[0].value):
                return "eval", receiver
            return method, receiver
        qualified = self.qualify(node.func, scope)
        if qualified:
            if qualified.endswith("autograd.backward"):
                return "backward", None
            if api.torch_member(qualified, api.OPTIMIZER_CLASSES) and ".optim" in qualified:
                return "optimizer_ctor", None
        if isinstance(node.func, (cst.Name, cst.Attribute)) and qualified is None and \
                self.is_model_expr(node.func, scope, call.order) and self.callee(call) is None:
            return "forward", call.callee_text
        return None, None

    def optimized_model(self, step_call: CallSite) -> Optional[str]:
        """`model` when the optimizer stepped here was built as `SGD(model.parameters(), ...)`."""
        func = step_call.node.func
        if not isinstance(func, cst.Attribute):
            return None
        optimizer = func.value
        if self.object_role(optimizer, step_call.scope, step_call.order) == "scaler" and step_call.node.args:
            optimizer = step_call.node.args[0].value
        models = set()
        for instance in self.instances(optimizer, step_call.scope, step_call.order):
            params = bound_argument(instance.ctor, "params", 0) if instance.ctor is not None else None
            if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute) and \
                    params.func.attr.value in ("parameters", "named_parameters"):
                models.add(dotted_name(params.func.value))
            else:
                models.add(None)
        return models.pop() if len(models) == 1 else None

    def object_role(self, expr: cst.BaseExpression, scope: Scope, order: int) -> Optional[str]:
        """optimizer | scheduler | scaler | None, from how the object was built or named."""
        for instance in self.instances(expr, scope, order):
            qualified = instance.torch_class or ""
            last = api.last_component(qualified) if qualified else ""
            if ".lr_scheduler" in qualified or last in api.SCHEDULER_CLASSES:
                return "scheduler"
            if last == "GradScaler":
                return "scaler"
            if ".optim" in qualified or last in api.OPTIMIZER_CLASSES:
                return "optimizer"
        text = dotted_name(expr)
        if text and "scaler" in text.rsplit(".", 1)[-1].lower():
            return "scaler"
        if api.looks_like_scheduler(text):
            return "scheduler"
        if api.looks_like_optimizer(text):
            return "optimizer"
        return None

    # -- loops ------------------------------------------------------------------------
    def loop_events(self, loop: Loop) -> List[Event]:
        return [e for e in self.events(loop.scope) if loop in e.loops]

    def loop_iterable(self, loop: Loop) -> Optional[cst.BaseExpression]:
        """What a loop takes its items from, looking through enumerate(), tqdm(), zip(), iter(), a
        progress bar kept in a variable, a wrapper given the loader first (`logger.log_every(loader,
        50)`), and, for a `while` loop, what `next(batches)` in its body draws from."""
        expr = loop.iter_expr if loop.iter_expr is not None else self._drawn_with_next(loop)
        for _ in range(MAX_DEPTH):
            if isinstance(expr, cst.Name):
                origins = [o.expr for o in self.origins(expr, loop.scope, loop.start) if not o.path]
                if len(origins) != 1 or not isinstance(origins[0], cst.Call):
                    break
                expr_origin = origins[0]
                if not self._wraps_an_iterable(expr_origin, loop.scope):
                    break
                expr = expr_origin
            elif isinstance(expr, cst.Call) and self._wraps_an_iterable(expr, loop.scope):
                expr = expr.args[0].value
            else:
                break
        return expr

    def _wraps_an_iterable(self, call: cst.Call, scope: Scope) -> bool:
        if not call.args or call.args[0].keyword is not None or call.args[0].star:
            return False
        if dotted_name(call.func) in _ITERATION_WRAPPERS:
            return True
        first = call.args[0].value
        return isinstance(call.func, cst.Attribute) and self.qualify(call.func, scope) is None and \
            api.looks_like_loader(dotted_name(first))

    def _drawn_with_next(self, loop: Loop) -> Optional[cst.BaseExpression]:
        for call in loop.scope.calls:
            if call.callee_text == "next" and loop.contains(call.order) and call.node.args:
                return call.node.args[0].value
        return None

    def is_batch_loop(self, loop: Loop) -> bool:
        expr = self.loop_iterable(loop)
        if expr is None:
            return False
        if api.looks_like_loader(dotted_name(expr)):
            return True
        return any(i.torch_name in api.DATALOADER_CLASSES for i in self.instances(expr, loop.scope, loop.start))


def _is_bool(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value in ("True", "False")


def _is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"
