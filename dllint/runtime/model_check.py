"""Checks on a model alone, without a training script: `check_model(model, batch, loss_fn)` and
`dllint confirm --model package.module:factory --input-shape 8,3,32,32`.

- overfit one fixed batch: the loss must fall below OVERFIT_SHARE of its start within the steps;
- the loss at initialisation against -log(1/C) for C-class cross-entropy;
- zeroed inputs: training on zeros must do clearly worse than on the real batch;
- batch independence: in evaluation mode, output i must not depend on input j != i;
- dead parameters: parameters that get no gradient from the loss;
- train/eval: two identical evaluation forwards must agree.

The model is trained on copies of its weights and restored afterwards.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from dllint.runtime.checks import all_runtime_codes
from dllint.runtime.observations import Observation

DEFAULT_STEPS = 100
DEFAULT_LEARNING_RATE = 1e-2
# Overfitting one batch succeeds when the final loss is below this share of the initial loss.
OVERFIT_SHARE = 0.05
# Zeroed inputs "do as well" when the real-input loss is not below this share of the zero-input loss.
ZERO_INPUT_SHARE = 0.9
# The loss at initialisation is "far off" above this multiple of -log(1/C).
INITIAL_LOSS_FACTOR = 3.0
# Input gradients below this are numerical noise (batch independence).
INDEPENDENCE_TOLERANCE = 1e-7


@dataclass
class ModelFinding:
    code: str
    message: str
    severity: str
    confirmed: bool = True

    @property
    def name(self) -> str:
        return all_runtime_codes().get(self.code, ("functional-dropout-always-on", "error", ""))[0]


@dataclass
class ModelReport:
    findings: List[ModelFinding] = field(default_factory=list)
    curve: List[float] = field(default_factory=list)
    zero_input_curve: List[float] = field(default_factory=list)
    steps: int = 0
    initial_loss: Optional[float] = None
    reference_loss: Optional[float] = None
    final_loss: Optional[float] = None
    gradient_norms: Dict[str, float] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not any(f.confirmed and f.severity != "info" for f in self.findings)

    def __str__(self) -> str:
        lines = [f"{f.code} [{f.name}] {f.severity}: {f.message}" for f in self.findings]
        if self.curve:
            lines.append(f"overfit curve: {_curve_text(self.curve)}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines) or "all model checks passed"


def check_model(model, batch, loss_fn: Optional[Callable] = None, *, targets=None, classes: Optional[int] = None,
                steps: Optional[int] = None, lr: float = DEFAULT_LEARNING_RATE, batch_dim: Optional[int] = None,
                plot: Optional[str] = None, seed: int = 0) -> ModelReport:
    """Run the model-only checks. `batch` is the input tensor, or (inputs, targets).

    Without `loss_fn`: cross-entropy when `classes` is given or the targets are integer, else MSE.
    Without targets: random class indices (cross-entropy) or random values shaped like the output.
    `batch_dim` defaults to 0, or 1 when the model holds a sequence-first RNN.
    """
    import torch

    steps = steps or DEFAULT_STEPS
    inputs = batch
    if isinstance(batch, (tuple, list)):
        inputs, targets = batch[0], batch[1]
    report = ModelReport(steps=steps)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    saved_state = copy.deepcopy(model.state_dict())
    if batch_dim is None:
        batch_dim = _batch_dim(model, torch)
    try:
        model.train()
        with torch.no_grad():
            sample_output = _main_output(model(inputs), torch)
        if loss_fn is None:
            use_classes = classes is not None or (targets is not None and not targets.is_floating_point())
            loss_fn = torch.nn.functional.cross_entropy if use_classes else torch.nn.functional.mse_loss
            if targets is None:
                targets = _random_targets(sample_output, classes, batch_dim, generator, torch) if use_classes \
                    else torch.randn(sample_output.shape, generator=generator).to(sample_output.device)
        elif targets is None:
            raise ValueError("check_model with a custom loss_fn needs the targets: pass batch=(inputs, targets)")
        _check_initial_loss(report, model, inputs, targets, loss_fn, torch)
        _check_dead_parameters(report, model, inputs, targets, loss_fn, torch)
        model.load_state_dict(saved_state)
        report.curve = _train_curve(model, inputs, targets, loss_fn, steps, lr, torch)
        report.final_loss = _eval_loss(model, inputs, targets, loss_fn, torch)
        _judge_overfit(report)
        model.load_state_dict(saved_state)
        zeros = torch.zeros_like(inputs) if inputs.is_floating_point() else None
        if zeros is not None:
            report.zero_input_curve = _train_curve(model, zeros, targets, loss_fn, steps, lr, torch)
            zero_final = _eval_loss(model, zeros, targets, loss_fn, torch)
            _judge_zero_input(report, zero_final)
        model.load_state_dict(saved_state)
        _check_batch_independence(report, model, inputs, batch_dim, torch)
        _check_eval_determinism(report, model, inputs, torch)
    finally:
        model.load_state_dict(saved_state)
        model.train(was_training)
    if plot:
        _plot(report, plot)
    return report


# -- the checks ---------------------------------------------------------------------------------------

def _main_output(output, torch):
    """The tensor a loss would use: the output itself, or the first tensor of a tuple/dict output."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    for item in output:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError("the model returned no tensor")


def _batch_dim(model, torch) -> int:
    return 1 if has_time_first_layers(model, torch) else 0


def has_time_first_layers(model, torch) -> bool:
    """RNNs and attention layers that take (time, batch, ...) input: the batch is not dimension 0."""
    nn = torch.nn
    return any(isinstance(module, (nn.RNNBase, nn.MultiheadAttention)) and not module.batch_first
               for module in model.modules())


def _random_targets(output, classes, batch_dim, generator, torch):
    count = classes or output.shape[1]
    shape = [output.shape[0]] + list(output.shape[2:]) if output.dim() >= 2 else [1]
    return torch.randint(0, count, shape, generator=generator).to(output.device)


def _loss(model, inputs, targets, loss_fn, torch):
    return loss_fn(_main_output(model(inputs), torch), targets)


def _check_initial_loss(report: ModelReport, model, inputs, targets, loss_fn, torch) -> None:
    with torch.no_grad():
        output = _main_output(model(inputs), torch)
        value = float(loss_fn(output, targets))
    report.initial_loss = value
    if not math.isfinite(value):
        report.findings.append(ModelFinding("RT101", f"the loss at initialisation is {value}", "error"))
        return
    if loss_fn in (torch.nn.functional.cross_entropy,) or isinstance(loss_fn, torch.nn.CrossEntropyLoss):
        classes = output.shape[1] if output.dim() >= 2 else output.shape[0]
        report.reference_loss = math.log(classes)
        if value > INITIAL_LOSS_FACTOR * report.reference_loss:
            report.findings.append(ModelFinding(
                "RT201", f"the loss at initialisation is {value:.3g}, against -log(1/{classes}) = "
                         f"{report.reference_loss:.3g} for an untrained {classes}-class model: the last layer is "
                         f"initialised too large or the inputs are not normalised", "warning"))
        else:
            report.notes.append(f"loss at initialisation {value:.3g} (reference -log(1/{classes}) = "
                                f"{report.reference_loss:.3g})")


def _check_dead_parameters(report: ModelReport, model, inputs, targets, loss_fn, torch) -> None:
    model.zero_grad(set_to_none=True)
    _loss(model, inputs, targets, loss_fn, torch).backward()
    dead = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.grad is None or not bool(param.grad.ne(0).any()):
            dead.append(name)
        else:
            report.gradient_norms[name] = float(param.grad.norm())
    model.zero_grad(set_to_none=True)
    if dead:
        shown = ", ".join(dead[:6]) + (f" and {len(dead) - 6} more" if len(dead) > 6 else "")
        report.findings.append(ModelFinding("RT302", f"{len(dead)} parameter(s) got no gradient from the loss: "
                                                     f"{shown}", "warning"))


def _train_curve(model, inputs, targets, loss_fn, steps: int, lr: float, torch) -> List[float]:
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    curve = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(model, inputs, targets, loss_fn, torch)
        loss.backward()
        optimizer.step()
        curve.append(float(loss.detach()))
    return curve


def _eval_loss(model, inputs, targets, loss_fn, torch) -> float:
    model.eval()
    with torch.no_grad():
        value = float(_loss(model, inputs, targets, loss_fn, torch))
    model.train()
    return value


def _judge_overfit(report: ModelReport) -> None:
    start, final = report.curve[0], report.final_loss
    if not math.isfinite(final) or any(not math.isfinite(v) for v in report.curve):
        report.findings.append(ModelFinding("RT101", f"the loss became non-finite while overfitting one batch "
                                                     f"({_curve_text(report.curve)})", "error"))
        return
    if start <= 0:
        report.notes.append(f"overfit check skipped: the initial loss is {start:.3g}")
        return
    if final < OVERFIT_SHARE * start:
        report.notes.append(f"overfits one batch: loss {start:.3g} -> {final:.3g} in {report.steps} steps")
    else:
        report.findings.append(ModelFinding(
            "RT303", f"cannot overfit one fixed batch: loss {start:.3g} -> {final:.3g} after {report.steps} Adam steps "
                     f"(needs < {OVERFIT_SHARE:.0%} of the start); curve {_curve_text(report.curve)}", "warning"))


def _judge_zero_input(report: ModelReport, zero_final: float) -> None:
    real_final = report.final_loss
    if real_final is None or not math.isfinite(zero_final) or not math.isfinite(real_final):
        return
    if real_final >= ZERO_INPUT_SHARE * zero_final:
        report.findings.append(ModelFinding(
            "RT304", f"training on zeroed inputs reaches loss {zero_final:.3g}, the real inputs {real_final:.3g}: "
                     f"the model does not use its input", "warning"))
    else:
        report.notes.append(f"zeroed inputs do worse, as they should: loss {zero_final:.3g} against "
                            f"{real_final:.3g} on the real inputs")


def _check_batch_independence(report: ModelReport, model, inputs, batch_dim: int, torch) -> None:
    was_training = model.training
    mixed, text = batch_mixing(model, inputs, batch_dim, torch)
    model.train(was_training)
    if mixed:
        report.findings.append(ModelFinding("RT301", text, "error"))
    else:
        report.notes.append(text)


def batch_mixing(model, inputs, batch_dim: int, torch, output_dims=None) -> Tuple[Optional[bool], str]:
    """In evaluation mode, does output 0 depend on the other samples of the batch?

    (True, the finding's message) when it does, (False, a note) when the samples are independent, (None,
    why) when it cannot be told. The output's batch dimension is the first of `output_dims` (default:
    the input's, then 0, then 1: an RNN's last state) whose size is the batch's. Leaves the model in
    evaluation mode and every parameter's .grad untouched (only the input's gradient is taken).
    """
    if not inputs.is_floating_point() or inputs.dim() <= batch_dim or inputs.shape[batch_dim] < 2:
        return None, "batch independence not checked (needs a floating input with 2+ samples)"
    model.eval()
    x = inputs.detach().clone().requires_grad_(True)
    # cuDNN's RNN kernels refuse a backward pass in evaluation mode; the native ones do not.
    with torch.backends.cudnn.flags(enabled=False), torch.enable_grad():
        output = _main_output(model(x), torch)
        samples = inputs.shape[batch_dim]
        candidates = output_dims if output_dims is not None else (batch_dim, 0, 1)
        output_dim = next((d for d in candidates if d < output.dim() and output.shape[d] == samples), None)
        if output_dim is None or not output.requires_grad:
            return None, "batch independence not checked (the output has no batch dimension or no gradient)"
        (gradient,) = torch.autograd.grad(output.select(output_dim, 0).float().sum(), x, allow_unused=True)
    if gradient is None:
        return None, "the outputs do not depend on the inputs at all"
    gradient = gradient.detach().abs()
    others = gradient.narrow(batch_dim, 1, inputs.shape[batch_dim] - 1)
    leak = float(others.max())
    if leak <= INDEPENDENCE_TOLERANCE:
        return False, "outputs are independent across the batch"
    mixed = int((others.flatten(batch_dim + 1).amax(dim=-1) > INDEPENDENCE_TOLERANCE).sum()) \
        if others.dim() > batch_dim + 1 else int((others > INDEPENDENCE_TOLERANCE).sum())
    return True, (f"in evaluation mode, output 0 depends on {mixed} other sample(s) of the batch (input gradient up to "
            f"{leak:.3g}): a view/reshape probably mixes the batch dimension (use permute/transpose)")


def _check_eval_determinism(report: ModelReport, model, inputs, torch) -> None:
    model.eval()
    with torch.no_grad():
        first = _main_output(model(inputs), torch)
        second = _main_output(model(inputs), torch)
        model.train()
        train_output = _main_output(model(inputs), torch)
    if not torch.equal(first, second):
        difference = float((first.float() - second.float()).abs().max())
        report.findings.append(ModelFinding(
            "DL303", f"two evaluation forwards of the same batch differ (by up to {difference:.3g}): something stays "
                     f"random in evaluation mode, typically F.dropout without training=self.training", "error"))
    elif not torch.equal(first, train_output):
        report.notes.append("train and eval outputs differ (dropout/batch norm), evaluation is deterministic")


# -- output -------------------------------------------------------------------------------------------

def _curve_text(curve: List[float]) -> str:
    if not curve:
        return ""
    points = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1})
    return ", ".join(f"{i + 1}: {curve[i]:.3g}" for i in points)


def _plot(report: ModelReport, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.notes.append(f"--plot needs matplotlib (pip install matplotlib); {path} was not written")
        return
    figure, (curves, norms) = plt.subplots(1, 2, figsize=(11, 4))
    curves.plot(range(1, len(report.curve) + 1), report.curve, label="real inputs")
    if report.zero_input_curve:
        curves.plot(range(1, len(report.zero_input_curve) + 1), report.zero_input_curve, label="zeroed inputs")
    curves.set_xlabel("step")
    curves.set_ylabel("loss")
    curves.set_yscale("log")
    curves.set_title("overfitting one batch")
    curves.legend()
    names = list(report.gradient_norms)
    norms.barh(range(len(names)), [report.gradient_norms[n] for n in names])
    norms.set_yticks(range(len(names)))
    norms.set_yticklabels(names, fontsize=7)
    norms.set_xscale("log")
    norms.set_title("gradient norm per parameter at initialisation")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    report.notes.append(f"wrote {path}")


def observations_from_report(report: ModelReport, model) -> List[Observation]:
    """The model report as observations located at the model's class definition."""
    site = _definition_site(type(model))
    return [Observation(f.code, f.message, f.confirmed, [site] if site else [], severity=f.severity)
            for f in report.findings]


def _definition_site(cls) -> Optional[Any]:
    try:
        path = inspect.getsourcefile(cls)
        _, line = inspect.getsourcelines(cls)
    except (TypeError, OSError):
        return None
    if path is None:
        return None
    return (os.path.realpath(path), line, 1)
