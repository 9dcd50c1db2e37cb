"""Loss-function observations, from wrappers around torch.nn.functional's losses (loss modules call them).

DL201/DL203 probabilities (rows non-negative, summing to 1) into cross_entropy / nll_loss, DL202 sigmoid
outputs into binary_cross_entropy_with_logits; runtime-only: the loss at initialisation against
-log(1/C). The regression losses are wrapped too, so that other checks know the training losses (the
shapes they compare are DL209's).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from dllint.runtime.hooks import LineCheck, LineRecord
from dllint.runtime.observations import Observation, Site

# A row is a probability distribution when its entries are >= -NEGATIVE_TOLERANCE and sum to 1 within
# ROW_SUM_TOLERANCE. DL201/DL203 are confirmed when every checked call at the line passed, over at
# least MIN_ROWS rows.
ROW_SUM_TOLERANCE = 1e-3
NEGATIVE_TOLERANCE = 1e-6
MIN_ROWS = 4
# Values in [0, 1] alone are weak evidence for DL202 (small logits can be positive); the autograd graph
# showing a sigmoid just before the loss is what confirms it.
UNIT_RANGE_MIN_CALLS = 4
# RT201: the first training loss counts as far off when above this multiple of -log(1/C).
INITIAL_LOSS_FACTOR = 3.0
# Detailed checks run on the first calls at each line, then on every CHECK_EVERY-th call.
DETAILED_CALLS = 16
CHECK_EVERY = 25

PROBABILITY_LOSSES = {"cross_entropy": "DL201", "nll_loss": "DL203"}
LOGIT_LOSSES = {"binary_cross_entropy_with_logits": "DL202"}
REGRESSION_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")
# Autograd nodes that only reshape or copy: the producer of a loss input is looked for behind them.
PASS_THROUGH_NODES = {"ViewBackward0", "ReshapeAliasBackward0", "UnsafeViewBackward0", "SqueezeBackward0",
                      "SqueezeBackward1", "SqueezeBackward2", "UnsqueezeBackward0", "PermuteBackward0",
                      "TransposeBackward0", "TransposeBackward1", "TBackward0", "CloneBackward0",
                      "ToCopyBackward0", "SelectBackward0", "SliceBackward0", "ExpandBackward0",
                      "IndexBackward0", "SplitBackward0", "UnbindBackward0", "AliasBackward0"}
PRODUCER_NODES = {"SoftmaxBackward0": "softmax", "SigmoidBackward0": "sigmoid"}
# Autograd nodes that join tensors: the input has a producer when every joined part has that producer.
JOINING_NODES = {"CatBackward0", "StackBackward0"}


@dataclass(eq=False)
class LossSite(LineRecord):
    """Everything seen at one loss call line."""

    calls: int = 0
    checked: int = 0
    probability_calls: int = 0
    rows: int = 0
    max_deviation: float = 0.0
    min_value: float = math.inf
    max_value: float = -math.inf
    unit_range_calls: int = 0
    producers: Dict[str, int] = field(default_factory=dict)
    classes: Optional[int] = None
    initial_loss: Optional[float] = None
    grad_calls: int = 0


class LossCheck(LineCheck):
    ATTRIBUTE = "loss"
    ORDER = 20
    CODES = ("DL201", "DL202", "DL203")
    RUNTIME_CODES = {
        "RT201": ("initial-loss-off-reference", "warning",
                  "the loss at initialisation is far above -log(1/C), its value for an untrained C-class model"),
    }

    RECORD = LossSite

    def __init__(self, probe):
        super().__init__(probe)
        self._last_output = None
        self._last_output_site: Optional[List[Site]] = None
        self._outputs: List[Tuple[Any, List[Site]]] = []  # (weakref, sites) of recent loss outputs

    def install(self) -> None:
        functional = self.torch.nn.functional
        for name in (*PROBABILITY_LOSSES, *LOGIT_LOSSES, *REGRESSION_LOSSES):
            original = getattr(functional, name, None)
            if original is not None:
                setattr(functional, name, self._wrap(name, original))

    def _wrap(self, function: str, original):
        check = self

        def loss_function(*args, **kwargs):
            output = original(*args, **kwargs)
            try:
                # Training losses are checked on watched steps; evaluation losses (no grad) always.
                if check.probe.training.watching() or not check.torch.is_grad_enabled():
                    check.on_call(function, args, kwargs, output)
            except Exception as error:
                check.probe.internal_error(f"{function} wrapper", error)
            return output

        loss_function.__wrapped__ = original
        loss_function.__name__ = function
        return loss_function

    # -- events -------------------------------------------------------------------------------------

    def on_call(self, function: str, args, kwargs, output) -> None:
        torch = self.torch
        sites = self.probe.user_sites(depth=3)
        if not sites:
            return
        record = self.record_at(function, sites)
        record.calls += 1
        grad_enabled = torch.is_grad_enabled()
        if isinstance(output, torch.Tensor) and output.requires_grad:
            record.grad_calls += 1
            self._remember_output(output, sites)
        if record.calls > DETAILED_CALLS and record.calls % CHECK_EVERY:
            return
        prediction = args[0] if args else kwargs.get("input")
        if not isinstance(prediction, torch.Tensor) or not prediction.is_floating_point():
            return
        record.checked += 1
        if function in PROBABILITY_LOSSES:
            self._check_probabilities(record, prediction)
            if grad_enabled and record.initial_loss is None and record.grad_calls == 1:
                self._note_initial_loss(record, function, args, kwargs, prediction, output)
        elif function in LOGIT_LOSSES:
            self._check_unit_range(record, prediction)

    def _remember_output(self, output, sites: List[Site]) -> None:
        self._last_output = weakref.ref(output)
        self._outputs.append((weakref.ref(output), sites))
        del self._outputs[:-8]

    def _check_probabilities(self, record: LossSite, prediction) -> None:
        x = prediction.detach()
        class_dim = 1 if x.dim() >= 2 else 0
        if x.dim() == 0 or x.shape[class_dim] < 2 or x.numel() == 0:
            return
        record.classes = x.shape[class_dim]
        minimum, deviation = self.torch.stack([x.min().float(),
                                               (x.sum(dim=class_dim).float() - 1).abs().max()]).tolist()
        rows = x.numel() // x.shape[class_dim]
        if minimum >= -NEGATIVE_TOLERANCE and deviation <= ROW_SUM_TOLERANCE:
            record.probability_calls += 1
            record.rows += rows
            record.max_deviation = max(record.max_deviation, deviation)
        self._note_producer(record, prediction)

    def _check_unit_range(self, record: LossSite, prediction) -> None:
        x = prediction.detach()
        if x.numel() == 0:
            return
        minimum, maximum = self.torch.stack([x.min().float(), x.max().float()]).tolist()
        record.min_value = min(record.min_value, minimum)
        record.max_value = max(record.max_value, maximum)
        if minimum >= 0.0 and maximum <= 1.0:
            record.unit_range_calls += 1
        self._note_producer(record, prediction)

    def _note_producer(self, record: LossSite, prediction) -> None:
        producer = _producer(prediction.grad_fn, 8)
        if producer is not None:
            record.producers[producer] = record.producers.get(producer, 0) + 1

    def _note_initial_loss(self, record: LossSite, function, args, kwargs, prediction, output) -> None:
        """RT201: only for the plain mean reduction without class weights, where -log(1/C) is the reference."""
        weight = kwargs.get("weight", args[2] if len(args) > 2 else None)
        reduction = kwargs.get("reduction", "mean")
        if weight is not None or reduction != "mean" or record.classes is None or output.numel() != 1:
            return
        value = float(output.detach())
        if function == "nll_loss" and record.probability_calls:
            return  # probabilities into NLL (DL203) give a meaningless value
        record.initial_loss = value

    # -- queries for other checks -------------------------------------------------------------------

    def last_output(self):
        return self._last_output() if self._last_output is not None else None

    def creation_sites(self, tensor) -> List[Site]:
        if tensor is None:
            return []
        for reference, sites in reversed(self._outputs):
            if reference() is tensor:
                return sites[:1]
        return []

    def training_sites(self) -> List[Site]:
        ranked = sorted(self.lines.values(), key=lambda r: -r.grad_calls)
        return [r.sites[0] for r in ranked if r.grad_calls]

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        found: List[Observation] = []
        for record in self.lines.values():
            if record.function in PROBABILITY_LOSSES:
                found.extend(self._probability_observations(record))
                found.extend(self._initial_loss_observations(record))
            elif record.function in LOGIT_LOSSES:
                found.extend(self._logit_observations(record))
        return found

    def _probability_observations(self, record: LossSite) -> List[Observation]:
        code = PROBABILITY_LOSSES[record.function]
        expected = "logits" if record.function == "cross_entropy" else "log-probabilities"
        if not record.checked:
            return []
        produced = f", produced by {', '.join(sorted(record.producers))}" if record.producers else ""
        if record.probability_calls == record.checked and record.rows >= MIN_ROWS:
            return [Observation(code, f"the input of {record.function} was a probability tensor in "
                                f"{record.probability_calls} of {record.checked} calls checked ({record.rows} rows, "
                                f"all entries >= 0, each row summing to 1 within {record.max_deviation:.1e}"
                                f"{produced}); {record.function} expects {expected}", True, record.sites)]
        if record.probability_calls:
            return [Observation(code, f"below the confirmation threshold: the input of {record.function} was a "
                                f"probability tensor in {record.probability_calls} of {record.checked} calls",
                                False, record.sites, severity="info")]
        return [Observation(code, f"the input of {record.function} was never a probability tensor "
                            f"({record.checked} calls checked)", summary=True)]

    def _initial_loss_observations(self, record: LossSite) -> List[Observation]:
        if record.initial_loss is None or not record.classes:
            return []
        reference = math.log(record.classes)
        if record.initial_loss > INITIAL_LOSS_FACTOR * reference:
            return [Observation("RT201", f"the first training loss was {record.initial_loss:.3g}; for "
                                f"{record.classes} classes an untrained model gives about -log(1/{record.classes}) = "
                                f"{reference:.3g}: the last layer is initialised too large or the inputs are not "
                                f"normalised", True, record.sites, severity="warning")]
        return []

    def _logit_observations(self, record: LossSite) -> List[Observation]:
        code = LOGIT_LOSSES[record.function]
        if not record.checked:
            return []
        sigmoid_calls = record.producers.get("sigmoid", 0)
        range_text = f"values in [{record.min_value:.3g}, {record.max_value:.3g}]"
        if sigmoid_calls:
            return [Observation(code, f"the input of {record.function} came straight from a sigmoid in "
                                f"{sigmoid_calls} of {record.checked} calls checked ({range_text}); the loss applies "
                                f"sigmoid itself and expects logits", True, record.sites)]
        if record.unit_range_calls == record.checked and record.checked >= UNIT_RANGE_MIN_CALLS:
            return [Observation(code, f"below the confirmation threshold: every input of {record.function} lay in "
                                f"[0, 1] ({record.checked} calls, {range_text}), as sigmoid outputs do, but no "
                                f"sigmoid was seen in the autograd graph", False, record.sites, severity="info")]
        return [Observation(code, f"the input of {record.function} looked like logits ({range_text}, "
                            f"{record.checked} calls checked)", summary=True)]


def _producer(node, depth: int):
    """softmax/sigmoid when the autograd graph shows one right before this node (behind reshapes, slices,
    and torch.cat/stack of parts that all come from it), else None."""
    while node is not None and depth > 0:
        depth -= 1
        name = type(node).__name__
        if name in PRODUCER_NODES:
            return PRODUCER_NODES[name]
        inputs = [n for n, _ in node.next_functions if n is not None]
        if name in JOINING_NODES:
            found = {_producer(part, depth) for part in inputs}
            return found.pop() if len(found) == 1 else None
        if name not in PASS_THROUGH_NODES:
            return None
        node = inputs[0] if inputs else None
    return None
