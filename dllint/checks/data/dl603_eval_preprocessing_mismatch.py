"""DL603: the training and evaluation pipelines of the same data normalize differently."""

import ast
import re

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.flow import bound_argument
from dllint.registry import rule

_ALBUMENTATIONS_DEFAULTS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_UNKNOWN = object()


@rule("DL603")
def check(ctx: CheckContext) -> None:
    for scope in ctx.file.scopes_mentioning(("Normalize",)):
        train, held_out = [], []
        for call in scope.calls:
            elements = call.node.args[0].value if call.node.args else None
            if (call.callee_text or "").rsplit(".", 1)[-1] != "Compose" or not isinstance(elements, (cst.List, cst.Tuple)):
                continue
            role = _role(scope, call)
            signature = _normalization(ctx, scope, call, elements)
            if role is None or signature is _UNKNOWN:
                continue
            (train if role == "train" else held_out).append((call, signature))
        if not train:
            continue
        for call, signature in held_out:
            if all(signature != train_signature for _, train_signature in train):
                reference, train_signature = train[0]
                if not signature:
                    problem = "does not normalize, unlike"
                elif not train_signature:
                    problem = "normalizes, unlike"
                else:
                    problem = "normalizes with another mean/std than"
                ctx.report(call.node, f"This evaluation pipeline {problem} the training pipeline at "
                                      f"{ctx.location(reference.node)}, so the model is evaluated on inputs on another "
                                      f"scale than it was trained on; use the same Normalize(mean, std) in both.")


def _role(scope, call):
    """"train" or "held_out" from the names the pipeline is stored under, its dict key, or the `if train:`
    branch that returns it."""
    names = [name for name, definitions in scope.definitions.items() if any(d.value is call.node for d in definitions)]
    for name, definitions in scope.definitions.items():
        for definition in definitions:
            if isinstance(definition.value, cst.Dict):
                names += [str(e.key.evaluated_value) for e in definition.value.elements
                          if isinstance(e, cst.DictElement) and e.value is call.node and
                          isinstance(e.key, cst.SimpleString)]
    if not names:  # built inline: the names of the dataset it is given to (val_set = ImageFolder(..., Compose(...)))
        names = [name for other in scope.calls if any(a.value is call.node for a in other.node.args)
                 for name, definitions in scope.definitions.items()
                 if any(d.value is other.node for d in definitions)]
    words = [_words(n) for n in names]
    if any(w & api.TRAINING_WORDS and not w & api.HELD_OUT_SPLIT_WORDS for w in words):
        return "train"
    if any(w & api.HELD_OUT_SPLIT_WORDS and not w & api.TRAINING_WORDS for w in words):
        return "held_out"
    flags = [p for p in scope.params if _words(p) & api.TRAINING_WORDS]
    if names or not flags or not any(value is call.node for _, value in scope.returns):
        return None
    for condition in call.conditions:
        test = getattr(condition, "test", None)
        if test is not None and re.search(rf"\b{flags[0]}\b", cst.Module([]).code_for_node(test)):
            return "train" if not isinstance(test, cst.UnaryOperation) else "held_out"
    if not call.conditions:
        return "held_out"  # `if train: return ...` above, the evaluation pipeline after it
    return "held_out" if any(isinstance(c, cst.Else) for c in call.conditions) else None


def _normalization(ctx: CheckContext, scope, call, elements):
    """The (mean, std) of each Normalize in the pipeline; _UNKNOWN when an element may normalize unseen."""
    found = []
    for element in elements.elements:
        value = element.value
        if isinstance(element, cst.StarredElement):
            return _UNKNOWN
        if isinstance(value, cst.Name):
            origins = list(ctx.analysis.origins(value, scope, call.order))
            if len(origins) != 1:
                return _UNKNOWN
            value = origins[0].expr
        if not isinstance(value, cst.Call):
            return _UNKNOWN
        qualified = ctx.analysis.qualify(value.func, scope) or ""
        if not qualified.startswith(("torchvision.transforms", "albumentations")) or qualified.endswith("Lambda"):
            return _UNKNOWN  # a project transform or a lambda may scale the input
        if qualified.endswith(".Normalize"):
            found.append(_mean_std(value, qualified.startswith("albumentations")))
    return found


def _mean_std(node: cst.Call, albumentations: bool):
    defaults = _ALBUMENTATIONS_DEFAULTS if albumentations else (None, None)
    return tuple(_literal(bound_argument(node, name, index), default)
                 for index, (name, default) in enumerate(zip(("mean", "std"), defaults)))


def _literal(node, default):
    if node is None:
        return default
    text = cst.Module([]).code_for_node(node)
    try:
        value = ast.literal_eval(text)
        return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else float(value)
    except (ValueError, SyntaxError, TypeError):
        return re.sub(r"\s+", "", text)


def _words(name: str) -> set:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name or "")}
