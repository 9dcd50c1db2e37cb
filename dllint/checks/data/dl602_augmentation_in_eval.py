"""DL602: random augmentation in the transform pipeline of validation or test data."""

import re

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import descendants
from dllint.registry import rule


@rule("DL602")
def check(ctx: CheckContext) -> None:
    reported = set()
    for scope in ctx.file.scopes_mentioning(("Compose", "transforms", "albumentations")):
        for call in scope.calls:
            name = _random_transform(ctx, scope, call.node)
            if name is None:
                continue
            pipeline = _enclosing_compose(ctx, scope, call.node) or call.node
            role, where = _held_out_role(ctx, scope, pipeline)
            if role is None or id(where or call.node) in reported:
                continue
            reported.add(id(where or call.node))
            ctx.report(where or call.node, f"{name} is random augmentation in the pipeline of {role}, so the "
                                           f"evaluation scores change from run to run and are measured on distorted "
                                           f"inputs; use the deterministic counterpart (Resize/CenterCrop) there.")


def _random_transform(ctx: CheckContext, scope, node: cst.Call):
    qualified = ctx.analysis.qualify(node.func, scope) or ""
    last = qualified.rsplit(".", 1)[-1]
    if qualified.startswith("torchvision.transforms"):
        return last if last.startswith("Random") or last in api.RANDOM_TORCHVISION_TRANSFORMS else None
    if qualified.startswith("albumentations"):
        probability = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "p"), None)
        if isinstance(probability, (cst.Integer, cst.Float)) and float(probability.value) in (0.0, 1.0) and \
                not last.startswith("Random"):
            return None  # never applied, or always applied the same way (a deterministic flip)
        return last if last.startswith("Random") or last in api.RANDOM_ALBUMENTATIONS_TRANSFORMS else None
    return None


def _enclosing_compose(ctx: CheckContext, scope, node: cst.Call):
    for call in scope.calls:
        if call.method != "Compose" and call.callee_text != "Compose":
            continue
        elements = call.node.args[0].value if call.node.args else None
        if isinstance(elements, (cst.List, cst.Tuple)) and any(e.value is node for e in elements.elements):
            return call.node
    return None


def _held_out_role(ctx: CheckContext, scope, pipeline: cst.Call):
    """What held-out data the pipeline is for (`val_transform`, {'test': ...}, CIFAR10(train=False, ...)), or
    None when it is not known to be evaluation data, or is named as deliberate augmentation."""
    names = [name for name, definitions in scope.definitions.items()
             if any(d.value is pipeline for d in definitions)]
    for name, definitions in scope.definitions.items():
        for definition in definitions:
            if isinstance(definition.value, cst.Dict):
                names += [f"{name}[{e.key.evaluated_value}]" for e in definition.value.elements
                          if isinstance(e, cst.DictElement) and e.value is pipeline and
                          isinstance(e.key, cst.SimpleString) and isinstance(e.key.evaluated_value, str)]
    if any(_used_as_views(scope, n) for n in names):
        return None, None
    held_out = [n for n in names if api.HELD_OUT_WORDS & _words(n) and not api.AUGMENTING_WORDS & _words(n)]
    if held_out:
        return f"`{held_out[0]}`", None
    for call in scope.calls:
        for arg in call.node.args:
            if not (isinstance(arg.value, cst.Name) and arg.value.value in names) or \
                    api.TTA_WORDS & _words(arg.value.value):
                continue
            # The parameter it is given as says where it goes: `val_transforms=train_transforms` is
            # evaluation data, `train_transforms=train_transforms` training data whatever else is built.
            keyword = _words(arg.keyword.value) if arg.keyword is not None else set()
            if api.HELD_OUT_WORDS & keyword and not api.AUGMENTING_WORDS & keyword:
                return f"`{arg.value.value}`, given as `{arg.keyword.value}` here", arg.value
            if not api.AUGMENTING_WORDS & keyword and _held_out_dataset(scope, call):
                return f"`{arg.value.value}`, given to the held-out dataset here", arg.value
    if names:
        return None, None
    for call in scope.calls:
        if any(arg.value is pipeline for arg in call.node.args) and _held_out_dataset(scope, call):
            return f"the held-out dataset built at {ctx.location(call.node)}", None
    if not names and any(value is pipeline for _, value in scope.returns) and api.HELD_OUT_WORDS & _words(scope.name) \
            and not api.AUGMENTING_WORDS & _words(scope.name):
        return f"`{scope.name}()`", None
    return None, None


def _held_out_dataset(scope, call) -> bool:
    """CIFAR10(root, train=False, ...), ImageNet(split="val", ...), val_set = ImageFolder(...)."""
    for arg in call.node.args:
        keyword = arg.keyword.value if arg.keyword is not None else None
        if keyword == "train" and isinstance(arg.value, cst.Name) and arg.value.value == "False":
            return True
        if keyword == "split" and isinstance(arg.value, cst.SimpleString) and \
                api.HELD_OUT_WORDS & _words(str(arg.value.evaluated_value)):
            return True
    assigned = [(name, d) for name, definitions in scope.definitions.items() for d in definitions
                if d.value is call.node]
    if any(d.unpack_path for _, d in assigned):
        return False  # `train_loader, val_loader = build(...)`: which result an argument reaches is not at hand
    return any(api.HELD_OUT_WORDS & _words(name) and not api.AUGMENTING_WORDS & _words(name) for name, _ in assigned)


def _used_as_views(scope, name: str) -> bool:
    """Is the pipeline called directly in a loop or a comprehension (several augmented views of one input)?"""
    direct = [c for c in scope.calls if c.callee_text == name]
    if any(c.loops for c in direct) or len(direct) > 1:
        return True
    comprehensions = [n for n in descendants(scope.node) if isinstance(n, (cst.ListComp, cst.GeneratorExp))] \
        if direct else []
    return any(c.node is n for comp in comprehensions for n in descendants(comp) for c in direct)


def _words(name: str) -> set:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name or "")}
