"""DL208 while a script trains: the input of a classification loss was normalized by a softmax or
log_softmax over dim 0, the batch dimension.

cross_entropy / nll_loss / kl_div read classes on dim 1 of an (N, C, ...) input. On watched steps the
input's autograd graph is followed (behind reshapes, slices and copies) to its producer; a
Softmax/LogSoftmax node saves the dimension it normalized and its result, so the evidence is the
normalization itself: each class column sums to 1 over the batch while a sample's probabilities do not.

Predictions read along dim 1 (argmax / max / topk) are checked at the lines of static DL208 findings only,
from the values, since evaluation runs without a graph: a 2-D tensor whose columns are distributions
over the batch (non-negative, each summing to 1; for log-probabilities, after exp) while its rows are
not.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import List, Optional

from dllint.runtime.checks.dl201_dl202_dl203_rt201_loss_inputs import PASS_THROUGH_NODES
from dllint.runtime.hooks import LineCheck, LineRecord, wrap_calls
from dllint.runtime.observations import Observation, shape_text as _shape

CLASSIFICATION_LOSSES = ("cross_entropy", "nll_loss", "kl_div")
PREDICTIONS = ("argmax", "max", "topk")
SUM_TOLERANCE = 1e-3
SOFTMAX_NODES = {"SoftmaxBackward0": "softmax", "LogSoftmaxBackward0": "log_softmax"}
# Nodes that keep the axes where they were: a transpose or permute in between (the column direction of a
# contrastive loss, `log_softmax(sim, dim=0).t()`) changes which dimension the softmax normalized.
KEEPING_AXES = PASS_THROUGH_NODES - {"PermuteBackward0", "TransposeBackward0", "TransposeBackward1", "TBackward0"}
# Calls whose graph is read at each line (then only the count of calls goes on).
CHECKED_CALLS = 8
GRAPH_DEPTH = 8


@dataclass(eq=False)
class SoftmaxSite(LineRecord):
    checked: int = 0
    over_batch: int = 0
    producer: str = ""
    shape: tuple = ()
    sample_sums: tuple = (float("inf"), float("-inf"))
    prediction: bool = False  # read by argmax/max/topk, not by a loss


class SoftmaxOverBatchCheck(LineCheck):
    ATTRIBUTE = "softmax_dim"
    ORDER = 24
    CODES = ("DL208",)
    UNOBSERVABLE = {"DL208": "no softmax over the batch dimension reached a cross_entropy, nll_loss or kl_div "
                             "with gradients on at this line, and no argmax/max/topk along dim 1 read one here"}

    RECORD = SoftmaxSite

    def __init__(self, probe):
        super().__init__(probe)
        self.targets = set()

    def install(self) -> None:
        wrap_calls(self.probe, self.torch.nn.functional, CLASSIFICATION_LOSSES, self.on_call)
        self.targets = self.probe.finding_lines("DL208")
        if self.targets:
            wrap_calls(self.probe, self.torch.Tensor, PREDICTIONS, self.on_prediction)
            wrap_calls(self.probe, self.torch, PREDICTIONS, self.on_prediction)

    def on_prediction(self, function: str, original, args, kwargs) -> None:
        """argmax/max/topk along dim 1 of a 2-D tensor, at a line of a static DL208 finding."""
        tensor = args[0] if args else kwargs.get("input")
        dim = kwargs.get("dim", args[2] if function == "topk" and len(args) > 2 else
                         args[1] if function != "topk" and len(args) > 1 else None)
        if (not isinstance(tensor, self.torch.Tensor) or not isinstance(dim, int) or tensor.dim() != 2
                or dim not in (1, -1) or tensor.shape[0] < 2 or tensor.shape[1] < 2 or not tensor.is_floating_point()):
            return
        caller = self.probe.sources.innermost_user_frame(sys._getframe(2))  # other checks' wrappers may be between
        if caller is None:
            return
        path = self.probe.sources.real_path(caller.f_code.co_filename)
        if (path, caller.f_lineno) not in self.targets:
            return
        record = self.record_of_frame(function, caller)
        if record.checked >= CHECKED_CALLS:
            return
        record.checked += 1
        with self.torch.no_grad():
            values = tensor.detach().float()
            producer = "softmax"
            if float(values.max()) <= 0.0:
                values, producer = values.exp(), "log_softmax"
            columns, rows = values.sum(dim=0), values.sum(dim=1)
            low, high, column_error, row_error, minimum = self.torch.stack([
                rows.min(), rows.max(), (columns - 1).abs().max(), (rows - 1).abs().max(), values.min()]).tolist()
        if minimum < 0.0 or column_error > SUM_TOLERANCE or row_error <= SUM_TOLERANCE:
            return
        record.over_batch += 1
        record.producer = producer
        record.shape = tuple(tensor.shape)
        record.sample_sums = (min(record.sample_sums[0], low), max(record.sample_sums[1], high))
        record.prediction = True

    def on_call(self, function: str, original, args, kwargs) -> None:
        prediction = args[0] if args else kwargs.get("input")
        if (not isinstance(prediction, self.torch.Tensor) or prediction.grad_fn is None
                or not self.probe.training.watching() or prediction.dim() < 2 or prediction.shape[0] < 2):
            return
        sites = self.probe.user_sites(depth=3)
        if not sites:
            return
        record = self.record_at(function, sites)
        if record.checked >= CHECKED_CALLS:
            return
        record.checked += 1
        node = softmax_over_first_dim(prediction.grad_fn)
        if node is None:
            return
        result = node._saved_result
        if result.shape[0] != prediction.shape[0]:
            return
        record.over_batch += 1
        record.producer = SOFTMAX_NODES[type(node).__name__]
        record.shape = tuple(result.shape)
        with self.torch.no_grad():
            probabilities = result.detach().float()
            if record.producer == "log_softmax":
                probabilities = probabilities.exp()
            sums = probabilities.sum(dim=1)
            low, high = self.torch.stack([sums.min(), sums.max()]).tolist()
        record.sample_sums = (min(record.sample_sums[0], low), max(record.sample_sums[1], high))

    def seen_over_batch(self) -> bool:
        return any(record.over_batch for record in self.lines.values())

    def finish(self) -> List[Observation]:
        found = []
        for record in self.lines.values():
            if not record.over_batch:
                continue
            batch, classes = record.shape[0], record.shape[1]
            low, high = record.sample_sums
            if record.prediction:
                source = (f"{record.function}(dim=1) read a {_shape(record.shape)} tensor that holds a "
                          f"{record.producer} over dim 0, the batch dimension")
            else:
                source = (f"the input of {record.function} came from {record.producer} over dim 0 of a "
                          f"{_shape(record.shape)} tensor, its batch dimension ({record.function} reads classes on "
                          f"dim 1)")
            evidence = (f"{source}, in {record.over_batch} of {record.checked} calls checked: each of the {classes} "
                        f"class columns sums to 1 over the {batch} samples, while a sample's probabilities sum to "
                        f"between {low:.3g} and {high:.3g} instead of 1; normalize over dim 1")
            found.append(Observation("DL208", evidence, record.over_batch == record.checked, record.sites))
        return found


def softmax_over_first_dim(node) -> Optional[object]:
    """The Softmax/LogSoftmax autograd node right behind this one (behind reshapes, slices and copies, not
    transposes) when it normalized dim 0 of a tensor with 2+ dimensions, else None."""
    depth = GRAPH_DEPTH
    while node is not None and depth > 0:
        depth -= 1
        name = type(node).__name__
        if name in SOFTMAX_NODES:
            result = node._saved_result
            dim = node._saved_dim
            dim = dim - 2 ** 64 if dim >= 2 ** 63 else dim  # saved as unsigned
            dim = dim + result.dim() if dim < 0 else dim
            return node if dim == 0 and result.dim() >= 2 else None
        if name not in KEEPING_AXES:
            return None
        inputs = [n for n, _ in node.next_functions if n is not None]
        node = inputs[0] if inputs else None
    return None
