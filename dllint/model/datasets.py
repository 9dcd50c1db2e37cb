"""What the stored order of a dataset is known to be: grouped by class (a folder dataset, a sorted
list), or carrying nothing (a download stored in no class order, a running text corpus, random draws,
a random_split subset). Unknown datasets are neither."""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import libcst as cst

from dllint.model import torch_api as api
from dllint.model.facts import Scope
from dllint.model.flow import Analysis, Origin
from dllint.model.draws import drawn_at_random

# torchvision datasets that store samples grouped by class (one folder per class, files sorted).
FOLDER_DATASETS = {"ImageFolder", "DatasetFolder"}
# torchvision/torchtext datasets whose stored training order is not grouped by class or source, and
# language-modeling corpora read as one running text: a fixed order costs little.
UNSORTED_DATASETS = {"MNIST", "FashionMNIST", "KMNIST", "QMNIST", "EMNIST", "CIFAR10", "CIFAR100", "SVHN",
                     "USPS", "WikiText2", "WikiText103", "PennTreebank"}
_WRAPPERS = {"Subset", "ConcatDataset"}
_LIBRARY_ROOTS = api.TORCH_ROOTS + api.LIGHTNING_ROOTS


def dataset_calls(analysis: Analysis, dataset: Optional[cst.BaseExpression], scope: Scope, order: int,
                  depth: int = 0) -> Iterator[Tuple[cst.Call, Origin]]:
    """The calls that build the dataset, looking through `Subset(full, ...)` / `ConcatDataset([...])`."""
    for origin in analysis.origins(dataset, scope, order):
        value = origin.expr
        if not isinstance(value, cst.Call):
            continue
        yield value, origin
        if depth < 2 and value.args and analysis.torch_member(value.func, origin.scope, _WRAPPERS):
            inner = value.args[0].value
            elements = [e.value for e in inner.elements] if isinstance(inner, (cst.List, cst.Tuple)) else [inner]
            for element in elements:
                yield from dataset_calls(analysis, element, origin.scope, origin.order, depth + 1)


def known_sorted(analysis: Analysis, dataset, scope: Scope, order: int) -> bool:
    """A folder dataset (ImageFolder: grouped by class), or one built from a `sorted(...)` list."""
    for value, origin in dataset_calls(analysis, dataset, scope, order):
        if analysis.torch_member(value.func, origin.scope, FOLDER_DATASETS):
            return True
        if any(_built_from_sorted(analysis, arg.value, origin.scope, origin.order) for arg in value.args):
            return True
    return False


def known_unsorted(analysis: Analysis, dataset, scope: Scope, order: int) -> bool:
    """MNIST, CIFAR-10 and similar downloads (stored in no class order), or a running text corpus."""
    builders = [_library_name(analysis, value.func, origin.scope)
                for value, origin in dataset_calls(analysis, dataset, scope, order)]
    builders = [name for name in builders if name not in _WRAPPERS]
    return bool(builders) and all(name in UNSORTED_DATASETS for name in builders)


def randomly_ordered(analysis: Analysis, dataset, scope: Scope, order: int) -> bool:
    """A dataset whose order is already random: a subset from random_split (a random permutation), or
    TensorDataset(torch.randn(...), ...) of independently drawn samples."""
    for origin in analysis.origins(dataset, scope, order):
        value = origin.expr
        if not isinstance(value, cst.Call):
            continue
        if analysis.torch_member(value.func, origin.scope, {"random_split"}):
            return True
        if analysis.torch_member(value.func, origin.scope, {"TensorDataset"}) and value.args and \
                drawn_at_random(analysis, value.args[0].value, origin.scope, origin.order):
            return True
    return False


def _built_from_sorted(analysis: Analysis, expr, scope: Scope, order: int, depth: int = 0) -> bool:
    """Is `expr` computed from a `sorted(...)` list, also through comprehensions over one?"""
    for node, node_scope, node_order in analysis.dependencies(expr, scope, order):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "sorted":
            return True
        if depth < 2 and isinstance(node, (cst.ListComp, cst.GeneratorExp, cst.SetComp)) and \
                _built_from_sorted(analysis, node.for_in.iter, node_scope, node_order, depth + 1):
            return True
    return False


def _library_name(analysis: Analysis, func, scope: Scope) -> str:
    """`MNIST` for torchvision.datasets.MNIST, `WikiText2` for Lightning's demo corpus; "" for others."""
    qualified = analysis.qualify(func, scope) or ""
    return api.last_component(qualified) if qualified.split(".", 1)[0] in _LIBRARY_ROOTS else ""
