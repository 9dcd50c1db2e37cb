"""DL601: the training DataLoader neither shuffles nor uses a sampler."""

import libcst as cst

from dllint.model.datasets import known_sorted, known_unsorted, randomly_ordered
from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.model.builder import descendants, dotted_name
from dllint.model.calls import may_be_none, result_bindings, returned_by, spread_keywords
from dllint.registry import rule


@rule("DL601")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # tests keep the order fixed on purpose: reproducible batches to assert on
    analysis = ctx.analysis
    for scope in ctx.scopes:
        for call in scope.calls:
            if not analysis.torch_member(call.node.func, scope, api.DATALOADER_CLASSES):
                continue
            keywords = {a.keyword.value: a.value for a in call.node.args if a.keyword is not None and not a.star}
            positional = [a for a in call.node.args if a.keyword is None and not a.star]
            if len(positional) > 2 or any(a.star == "*" for a in call.node.args):
                continue  # shuffle or a sampler passed positionally
            spread = spread_keywords(analysis, call.node, scope, call.order)
            if spread is None or spread & api.LOADER_ORDER_ARGUMENTS:
                continue  # **kwargs that may carry shuffle or a sampler
            if "batch_sampler" in keywords:
                continue
            # `sampler=train_sampler` that is None outside distributed runs samples nothing there
            sampler_when = dotted_name(keywords["sampler"]) or "the sampler" if "sampler" in keywords else None
            if sampler_when is not None and not may_be_none(analysis, keywords["sampler"], scope, call.order):
                continue
            shuffle = keywords.get("shuffle")
            if shuffle is not None and not (isinstance(shuffle, cst.Name) and shuffle.value == "False"):
                continue
            names_training = _names_training_data(call, scope, keywords, positional)
            callers = [] if names_training else _training_callers(analysis, scope, call)
            dataset = _dataset(keywords, positional)
            if not (names_training or callers) or _sampling_replaced(scope, call) or \
                    _built_per_element(scope, call, dataset):
                continue
            if shuffle is not None:
                # `shuffle=False` written out is a decision (reproducible runs, comparisons): wrong only
                # where the stored order is known to be sorted.
                report = known_sorted(analysis, dataset, scope, call.order)
            else:
                # Left out: wrong unless the stored order is known to carry nothing.
                report = not (_is_synthetic(analysis, dataset, scope, call.order) or
                              randomly_ordered(analysis, dataset, scope, call.order) or
                              known_unsorted(analysis, dataset, scope, call.order))
            if report:
                where = f" (built for {ctx.location(callers[0].node, callers[0].scope.file)})" if callers else ""
                when = f" when {sampler_when} is None (runs that are not distributed)" if sampler_when else ""
                fix = f"shuffle=({sampler_when} is None)" if sampler_when else "shuffle=True (or a sampler)"
                ctx.report(call.node, f"This training DataLoader{where} does not shuffle{when}, so every epoch "
                                      f"presents the batches in the same (often sorted-by-class) order, which "
                                      f"biases the gradient steps; pass {fix}.")


def _training_callers(analysis, scope, call):
    """Calls of the helper that returns this loader (`make_loader(ds, bs)`) whose result or dataset is
    named as training data: `train_loader = make_loader(train_set, 128)`."""
    if not returned_by(scope, call.node):
        return []
    found = []
    for caller, assigned in result_bindings(analysis, scope):
        arguments = [dotted_name(a.value) or "" for a in caller.node.args]
        lowered = [n.lower() for n in assigned + arguments if n]
        if assigned and not any(api.names_held_out_data(n) for n in lowered) and any("train" in n for n in lowered):
            found.append(caller)
    return found


def _dataset(keywords, positional):
    return keywords.get("dataset") or (positional[0].value if positional else None)


def _is_synthetic(analysis, dataset, scope, order) -> bool:
    """A dataset named, or built by a class named, as generated data: `self.random_train`,
    `RandomDataset(32, 64)`, `ds = FakeData(...)`."""
    if api.names_synthetic_data(dotted_name(dataset)):
        return True  # self.random_train
    expressions = [dataset]
    if isinstance(dataset, cst.Name):
        expressions += [definition.value for _, definition in analysis.reaching(scope, dataset.value, order)]
    for expr in expressions:
        if not isinstance(expr, cst.Call):
            continue
        if api.names_synthetic_data(dotted_name(expr.func)):
            return True
    return False


def _built_per_element(scope, call, dataset) -> bool:
    """`lambda ds: DataLoader(ds)` mapped over a collection of datasets: what each one holds is not at hand."""
    if not isinstance(dataset, cst.Name):
        return False
    for node in descendants(scope.node):
        if isinstance(node, cst.Lambda) and any(p.name.value == dataset.value for p in node.params.params) and \
                any(inner is call.node for inner in descendants(node.body)):
            return True
    return False


def _sampling_replaced(scope, call) -> bool:
    """The loader is handed to a privacy engine (`make_private(data_loader=loader)`,
    `DPDataLoader.from_data_loader(loader)`), which rebuilds it with Poisson sampling."""
    loader_names = {name for name, definitions in scope.definitions.items()
                    if any(d.value is call.node for d in definitions)}
    for later in scope.calls:
        name = (later.callee_text or "").lower()
        if later.order > call.order and ("private" in name or "from_data_loader" in name) and any(
                dotted_name(arg.value) in loader_names for arg in later.node.args):
            return True
    return False


def _names_training_data(call, scope, keywords, positional) -> bool:
    dataset = _dataset(keywords, positional)
    if any(marker in (dotted_name(dataset) or "").lower() for marker in api.ITERABLE_DATASET_WORDS):
        return False
    loader_names = [name for name, definitions in scope.definitions.items()
                    if any(d.value is call.node for d in definitions)]
    # Most specific first: the loader's name, then its dataset's, then the enclosing function's.
    for names in (loader_names, [dotted_name(dataset) or ""], [scope.name]):
        lowered = [n.lower() for n in names if n]
        if any(api.names_held_out_data(n) for n in lowered):
            return False
        if any("train" in n for n in lowered):
            return True
        if names is loader_names and lowered and any("loader" not in n and n not in ("dl", "data") for n in lowered):
            return False  # a loader named after what it holds (gallery_loader, queries): not training data
    return False
