"""What is known of a model's training mode: evidence that it is in training mode, or not."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from dllint.model.facts import ClassFacts, Scope
from dllint.model.flow import Analysis


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
