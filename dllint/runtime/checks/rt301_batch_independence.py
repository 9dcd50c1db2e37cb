"""RT301 while a script trains: an output that depends on other samples of its batch.

The first training forward of each model that an optimizer trains is replayed once, at the step that
follows it, in evaluation mode on at most SAMPLES samples of the same input, and the gradient of
sample 0's output is taken with respect to the whole input (torch.autograd.grad, so the parameters'
.grad stay as the script left them). The model's mode and the random number generators are restored
afterwards. Only models with one tensor input whose first dimension is the batch are
replayed: models with time-first RNN or attention layers are left alone, since their batch is not
dimension 0 of the input. The replay runs on copies of the model's buffers, so that nothing the
script's pending graphs saved is touched.

Two causes are named rather than reported as RT301: a model whose output is a softmax over dim 0 (DL208,
reported at the loss by its own check, or here when no loss showed it), and a view confirmed as DL508
that moved the batch axis in the model's forward (the replay's evidence joins that finding).
"""

from __future__ import annotations

from typing import List, Set

from dllint.runtime.observations import Observation

SAMPLES = 8


class BatchCheck:
    ATTRIBUTE = "batch"
    ORDER = 55
    CODES = ()
    RUNTIME_CODES = {
        "RT301": ("batch-mixing", "error", "an output depends on other samples of the batch in evaluation mode"),
    }

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.replayed: Set[int] = set()
        self.found: List[Observation] = []
        self.softmax_over_batch: List[Observation] = []

    def on_step(self, optimizer, sites, loss_value) -> None:
        # The step's training forwards as the non-finite check remembers them: (weakref to the model,
        # args, call site). This check runs before that one forgets them (ORDER).
        calls = self.probe.numerics.remembered_calls()
        pending = [(ref, args, site) for ref, args, site in calls
                   if ref() is not None and id(ref()) not in self.replayed]
        if not pending:
            return
        trained = {id(module) for _, module in self.probe.trained_roots()}
        for ref, args, site in pending:
            module = ref()
            if module is None or id(module) not in trained or id(module) in self.replayed:
                continue
            self.replayed.add(id(module))
            if len(args) == 1 and isinstance(args[0], self.torch.Tensor):
                self._replay(module, args[0], site)

    def _replay(self, module, inputs, site) -> None:
        from dllint.runtime.model_check import batch_mixing, has_time_first_layers

        torch = self.torch
        if inputs.dim() < 2 or inputs.shape[0] < 2 or has_time_first_layers(module, torch):
            return
        if isinstance(module, torch.jit.ScriptModule):
            return  # its buffers cannot be swapped for copies (functional_call refuses scripted modules)
        sample = inputs.detach()[:SAMPLES]
        probe = self.probe
        was_training = module.training
        cpu_state = torch.random.get_rng_state()
        cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        probe.paused = True
        try:
            mixed, text = batch_mixing(_OnBufferCopies(module, torch), sample, 0, torch, output_dims=(0,))
            producer = self._softmax_over_batch(module, sample) if mixed else None
        except Exception as error:
            probe.internal_error("batch-independence replay", error)
            return
        finally:
            module.train(was_training)
            torch.random.set_rng_state(cpu_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
            probe.paused = False
        if mixed:
            if producer is not None:
                # The model normalizes over the batch itself: DL208, which the loss check also sees.
                self.softmax_over_batch.append(Observation(
                    "DL208", f"in evaluation mode, output 0 of {type(module).__name__} depends on other samples of "
                             f"its batch: the model returns a {producer} over dim 0, the batch dimension", True,
                    [site] if site else [], scope="function"))
            elif not self.probe.views.explains_batch_mixing(module, text):
                self.found.append(Observation("RT301", text, True, [site] if site else [], severity="error"))

    def _softmax_over_batch(self, module, sample):
        """softmax/log_softmax when the model's output is one over dim 0 (run within the replay: eval mode,
        buffer copies, random state restored afterwards)."""
        from dllint.runtime.checks.dl208_softmax_over_batch import SOFTMAX_NODES, softmax_over_first_dim

        torch = self.torch
        with torch.enable_grad():
            output = _OnBufferCopies(module, torch)(sample.clone().requires_grad_(True))
        node = softmax_over_first_dim(getattr(output, "grad_fn", None))
        return SOFTMAX_NODES[type(node).__name__] if node is not None else None

    def finish(self) -> List[Observation]:
        # A softmax over the batch that reached a loss is reported there, at the loss's line.
        seen_at_loss = self.probe.softmax_dim.seen_over_batch()
        return list(self.found) + ([] if seen_at_loss else list(self.softmax_over_batch))


class _OnBufferCopies:
    """The model as batch_mixing calls it, with copies of its buffers in place of its own.

    The script's buffers are neither written by the replay nor restored afterwards: a graph still
    pending in the script (a GAN's generator output kept for its later backward()) saved batch norm's
    running statistics, and any in-place write, even of the same values, bumps their version and makes
    that backward() fail."""

    def __init__(self, module, torch):
        self.module = module
        self.torch = torch

    def eval(self):
        self.module.eval()
        return self

    def __call__(self, *args):
        copies = {name: buffer.detach().clone() for name, buffer in self.module.named_buffers()}
        return self.torch.func.functional_call(self.module, copies, args, strict=False)
