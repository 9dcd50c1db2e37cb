"""DL508 while a script runs: a view/reshape at the line of a static DL508 finding that reorders the
tensor's own sizes, compared on the real tensor with the permutation those sizes imply.

Tensor.view, Tensor.reshape and torch.reshape are wrapped only when the static analysis found DL508
somewhere, and only calls on those lines are looked at. For the first calls at a line: the old shape,
the new one, and every reordering of the old axes that, merged in order, gives the new shape (axes of
size 1 left aside); when the view differs from `x.permute(order).reshape(new)` for such an order, the
data was scrambled, and the share of elements that differ is the evidence. A new shape that keeps the
order of the old sizes (a split or a merge) is evidence against the finding.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Set, Tuple

from dllint.runtime.hooks import LineCheck, LineRecord
from dllint.runtime.observations import Observation, shape_text

CHECKED_CALLS = 4
# Tensors with more axes than this are not compared (the orders to try grow as n!).
MAX_AXES = 6


@dataclass(eq=False)
class ViewSite(LineRecord):
    checked: int = 0
    scrambled: int = 0
    evidence: Optional[Tuple[tuple, tuple, tuple, int, int]] = None  # old, new, order, differing, total
    kept_order: Optional[Tuple[tuple, tuple]] = None
    equal_to_permute: Optional[Tuple[tuple, tuple, tuple]] = None
    model_ids: Set[int] = field(default_factory=set)  # the models in whose forward the line ran
    batch_mixing: str = ""  # the batch-independence replay's evidence, when the view mixes the batch


class ViewAsPermuteCheck(LineCheck):
    ATTRIBUTE = "views"
    ORDER = 60
    CODES = ("DL508",)
    UNOBSERVABLE = {"DL508": "no view or reshape of a tensor with two or more elements ran on this line"}

    RECORD = ViewSite

    def __init__(self, probe):
        super().__init__(probe)
        self.targets = probe.finding_lines("DL508")

    def install(self) -> None:
        if not self.targets:
            return
        torch = self.torch
        torch.Tensor.view = self._wrap("view", torch.Tensor.view)
        torch.Tensor.reshape = self._wrap("reshape", torch.Tensor.reshape)
        torch.reshape = self._wrap("reshape", torch.reshape)

    def _wrap(self, function: str, original):
        check = self
        sources = self.probe.sources
        targets = self.targets
        torch = self.torch

        def viewing_function(tensor, *args, **kwargs):
            result = original(tensor, *args, **kwargs)
            caller = sys._getframe(1)
            path = sources.real_path(caller.f_code.co_filename)
            if path is not None and (path, caller.f_lineno) in targets and isinstance(tensor, torch.Tensor):
                try:
                    check.on_view(function, caller, tensor, result)
                except Exception as error:
                    check.probe.internal_error(f"{function} wrapper", error)
            return result

        viewing_function.__wrapped__ = original
        viewing_function.__name__ = function
        return viewing_function

    def on_view(self, function: str, caller, tensor, result) -> None:
        record = self.record_of_frame(function, caller)
        if record.checked >= CHECKED_CALLS or tensor.numel() < 2 or tensor.dim() > MAX_AXES:
            return
        record.checked += 1
        old, new = tuple(tensor.shape), tuple(result.shape)
        orders = _reorderings(old, new)
        if not orders:
            record.kept_order = record.kept_order or (old, new)
            return
        with self.torch.no_grad():
            viewed = result.detach()
            source = tensor.detach()
            best = None
            for order in orders:
                differing = int((source.permute(order).reshape(new) != viewed).sum())
                if differing == 0:
                    record.equal_to_permute = record.equal_to_permute or (old, new, order)
                    return
                if best is None:
                    best = (order, differing)
        record.scrambled += 1
        if self.probe.module_stack:
            record.model_ids.add(id(self.probe.module_stack[0]))
        if record.evidence is None:
            record.evidence = (old, new, best[0], best[1], viewed.numel())

    def explains_batch_mixing(self, model, evidence: str) -> bool:
        """Whether a scrambling view ran in this model's forward and a new shape moved the batch axis: the
        replay's evidence (RT301) then joins this finding's instead of being a finding of its own."""
        for record in self.lines.values():
            if record.evidence is not None and id(model) in record.model_ids and record.evidence[2][0] != 0:
                record.batch_mixing = evidence
                return True
        return False

    def finish(self) -> List[Observation]:
        found = []
        for record in self.lines.values():
            if record.evidence is not None:
                old, new, order, differing, total = record.evidence
                permute = ", ".join(str(axis) for axis in order)
                mixing = f"; {record.batch_mixing}" if record.batch_mixing else ""
                found.append(Observation(
                    "DL508", f"{record.function}() turned a {shape_text(old)} tensor into {shape_text(new)}, its own "
                             f"sizes in another order, in {record.scrambled} of {record.checked} calls checked: "
                             f"{differing:,} of its {total:,} elements differ from permute({permute}) followed by "
                             f"that reshape, so values of different axes were interleaved; use permute({permute}) "
                             f"(or transpose) before reshaping{mixing}", record.scrambled == record.checked,
                    record.sites))
            elif record.equal_to_permute is not None:
                old, new, order = record.equal_to_permute
                found.append(Observation(
                    "DL508", f"{record.function}() of a {shape_text(old)} tensor into {shape_text(new)} gave the same "
                             f"values as permute({', '.join(map(str, order))}) (only axes of size 1 moved, or the "
                             f"values are constant)", False, record.sites, summary=True))
            elif record.kept_order is not None:
                old, new = record.kept_order
                found.append(Observation(
                    "DL508", f"{record.function}() of a {shape_text(old)} tensor into {shape_text(new)} keeps the "
                             f"order of its sizes other than 1 (a split, a merge, or an axis of size 1 moved): no data is "
                             f"reordered",
                    False, record.sites, summary=True))
        return found


def _reorderings(old: tuple, new: tuple) -> List[tuple]:
    """Orders of the old axes, other than the original one, whose sizes merged in order give `new`, the
    least reordered first (fewest pairs of axes swapped: a channel moved last keeps height before width).
    Axes of size 1 are left aside (moving them reorders nothing) and put last. When the original order
    merges to `new` too, orders that only shuffle axes inside one merged group give the same shape and
    are no evidence of a reordering."""
    axes = [axis for axis, n in enumerate(old) if n != 1]
    ones = tuple(axis for axis, n in enumerate(old) if n == 1)
    target = [n for n in new if n != 1]
    in_order = _merge_groups([old[axis] for axis in axes], target)
    found = []
    for order in itertools.permutations(axes):
        groups = _merge_groups([old[axis] for axis in order], target)
        if list(order) == axes or groups is None:
            continue
        if in_order is not None and groups == in_order and all(
                {order[i] for i in group} == {axes[i] for i in group} for group in groups):
            continue
        found.append(order + ones)
    found.sort(key=lambda order: sum(1 for i, j in itertools.combinations(range(len(order)), 2) if order[i] > order[j]))
    return found


def _merge_groups(sizes: List[int], target: List[int]) -> Optional[List[range]]:
    """The positions of `sizes` merged into each entry of `target`, in order; None when they do not merge."""
    groups, index = [], 0
    for wanted in target:
        start, product = index, 1
        while product < wanted and index < len(sizes):
            product *= sizes[index]
            index += 1
        if product != wanted:
            return None
        groups.append(range(start, index))
    return groups if index == len(sizes) else None
