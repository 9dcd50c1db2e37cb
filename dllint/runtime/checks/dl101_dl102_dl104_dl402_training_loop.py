"""Training-loop observations, from the optimizer step hooks, parameter gradient hooks and backward().

DL101 gradients never cleared between steps, DL102 gradients cleared between backward() and step(),
DL104 every step's loss graph kept alive, DL402 backward() that reaches none of the parameters.

Gradients are compared by identity and version, never by value, so the tests are scale-invariant
(GradScaler, clipping) and see every way of clearing (`zero_grad()`, `p.grad = None`, `p.grad.zero_()`).
"""

from __future__ import annotations

import bisect
import linecache
import math
import re
import weakref
from typing import Any, Dict, List, Optional, Set, Tuple

from dllint.runtime.hooks import wrap_calls
from dllint.runtime.observations import Observation, Site

# At most this many parameters per optimizer carry gradient hooks (spread over the parameter list).
MONITORED_PER_OPTIMIZER = 16
# The gradient hooks and the loss-graph tags do their work (and the gradient norms are taken) in the
# first FULLY_WATCHED_STEPS intervals between optimizer steps, then in one interval of WATCH_EVERY: the
# remaining steps cost a flag test per hook. (Removing and re-adding hooks costs more than that.)
FULLY_WATCHED_STEPS = 6
WATCH_EVERY = 4
# DL101: a step counts as accumulating when at least this share of the parameters that received a
# gradient still held the previous step's gradient; confirmed after MIN_STEPS such steps that are at
# least half of the steps checked.
ACCUMULATING_SHARE = 0.5
# DL102: a step counts when at least this share of the parameters that received a gradient had it
# cleared before step().
CLEARED_SHARE = 0.5
MIN_STEPS = 2
# DL104: a loss graph counts as kept when it is still alive this many steps after its own step.
GRAPH_AGE = 3
KEPT_GRAPHS_MIN = 3
KEPT_GRAPHS_SHARE = 0.5


# `name.step()`, `name.step(closure)` or `scaler.step(name)` on the line that steps an optimizer.
_STEPPED_NAME = re.compile(r"([A-Za-z_][\w.]*)\.step\(\s*([A-Za-z_][\w.]*)?")


class ParamState:
    """What one monitored parameter's gradient did since its optimizer's last step."""

    __slots__ = ("param_ref", "after_step", "contributions", "reset_seen", "expected", "first_norm", "verify",
                 "watched", "__weakref__")

    def __init__(self, param):
        self.param_ref = weakref.ref(param)
        self.watched = True
        self.after_step = False
        self.contributions = 0
        self.reset_seen = False
        self.expected = None  # (id, version) of .grad right after the last accumulation or step
        self.first_norm = None
        self.verify = False  # record the first contribution's size (only once zeroed gradients were seen)


class OptimizerRecord:
    def __init__(self, optimizer, index: int):
        self.index = index
        self.name = type(optimizer).__name__
        self.states: List[ParamState] = []
        self.param_ids: Set[int] = set()
        self.params: List[Any] = []
        self.steps = 0
        self.step_sites: Dict[Site, int] = {}
        self.first_site: Optional[List[Site]] = None
        self.backward_count_at_step = 0
        self.checked_steps = 0
        self.accumulating_steps = 0
        self.accumulating_example = ""
        self.partial_steps = 0
        self.cleared_steps = 0
        self.cleared_verified = 0
        self.cleared_example = ""
        self.clear_sites: Dict[Site, int] = {}
        self.verify_contributions = False
        self.unreached_steps = 0
        self.backward_steps = 0
        self.norms: List[float] = []  # total gradient norm at each watched step...
        self.norm_steps: List[int] = []  # ...and that step's number
        self.last_norm: Optional[float] = None  # at the step being taken (None when not watched)
        self.not_yet_received: Dict[int, Any] = {}
        self.watched = True  # whether the gradient hooks watch the interval up to the next step
        self.watched_steps = 0  # steps whose interval was watched: the denominator of DL102
        self.built_sites: List[Site] = []  # where the optimizer was built


def watched_interval(step: int) -> bool:
    """Whether the interval that ends with optimizer step `step` (1-based) is watched by the hooks."""
    return step <= FULLY_WATCHED_STEPS or step % WATCH_EVERY == 0


class _GraphToken:
    """Held only by a hook on a loss's autograd node: it dies when that graph is freed."""

    __slots__ = ("__weakref__",)


class TrainingCheck:
    ATTRIBUTE = "training"
    ORDER = 10
    CODES = ("DL101", "DL102", "DL104", "DL402")

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        # Optimizer id -> its record. An optimizer built again over the same parameters (one per epoch, or
        # per step) shares the record, its step count included: the step budget holds for such scripts.
        self.optimizers: Dict[int, OptimizerRecord] = {}
        self.records: List[OptimizerRecord] = []
        self._optimizer_refs: Dict[int, Any] = {}  # optimizer id -> weak reference (ids are reused)
        self.received_ids: Set[int] = set()
        self.last_loss_value: Optional[float] = None
        self.backward_sites: Dict[Site, int] = {}
        self.last_backward_sites: List[Site] = []
        self.last_backward_value = None  # the detached value of the last backward() tensor (no graph)
        self.detached_backwards: List[List[Site]] = []
        self.zero_grad_log: List[Any] = []  # (backward_count, sites) of the clears since the last step
        self.graph_tokens_alive: Dict[int, int] = {}
        self.graph_interval_tagged = -1
        self.tagged_intervals: List[int] = []
        self._watching = True
        self.graph_sites: Dict[Site, int] = {}
        self.kept_graphs = (0, 0)  # (old graphs alive, steps old enough) at the last step
        # The strongest measurement over the whole run that meets the thresholds, with its step: a running
        # total reset every epoch keeps the graphs of one epoch, gone again at the last step.
        self.kept_graphs_best: Optional[Tuple[int, int, int]] = None

    # -- installation -------------------------------------------------------------------------------

    def install(self) -> None:
        torch = self.torch
        check = self
        wrap_calls(self.probe, torch.autograd, ["backward"],
                   lambda name, original, args, kwargs: self.on_backward(args[0] if args else kwargs.get("tensors")))

        for owner in (torch.optim.Optimizer, torch.nn.Module):
            self._wrap_zero_grad(owner)
        # Hook the parameters when the optimizer is built, so that the first step is observed too.
        original_init = torch.optim.Optimizer.__init__

        def optimizer_init(self_optimizer, *args, **kwargs):
            original_init(self_optimizer, *args, **kwargs)
            try:
                check._record_for(self_optimizer)
            except Exception as error:
                check.probe.internal_error("Optimizer.__init__ wrapper", error)

        optimizer_init.__wrapped__ = original_init
        torch.optim.Optimizer.__init__ = optimizer_init

    def _wrap_zero_grad(self, owner) -> None:
        original = owner.zero_grad
        check = self

        def zero_grad(self_object, *args, **kwargs):
            try:
                # Only DL102 in a watched interval reads where the gradients were cleared.
                sites = check.probe.user_sites(depth=2) if check.watching() else None
                if sites:
                    check.zero_grad_log.append((check.probe.backward_count, sites))
                    del check.zero_grad_log[:-8]
            except Exception as error:
                check.probe.internal_error("zero_grad wrapper", error)
            return original(self_object, *args, **kwargs)

        zero_grad.__wrapped__ = original
        owner.zero_grad = zero_grad

    def watching(self) -> bool:
        """Whether the interval up to the next optimizer step is watched (always before the first)."""
        return self._watching

    # -- events -------------------------------------------------------------------------------------

    def on_backward(self, tensors) -> None:
        probe = self.probe
        probe.backward_count += 1
        tensor = tensors[0] if isinstance(tensors, (tuple, list)) and tensors else tensors
        if not isinstance(tensor, self.torch.Tensor):
            return
        if tensor.requires_grad and not self.watching():
            return
        sites = probe.user_sites(depth=3)
        if sites:
            self.last_backward_sites = sites
            self.backward_sites[sites[0]] = self.backward_sites.get(sites[0], 0) + 1
        if not tensor.requires_grad:
            # DL402: backward() on a loss without grad_fn fails right after this; say where it came from.
            self.detached_backwards.append(sites + probe.loss.creation_sites(tensor))
            return
        if tensor.numel() == 1:
            self.last_backward_value = tensor.detach()
        self._tag_graphs(tensor)

    def _tag_graphs(self, tensor) -> None:
        """DL104: tie a token to this step's loss graph; a token still alive steps later means the graph is
        kept (by a running total, a list of losses...)."""
        interval = self.probe.steps
        if self.graph_interval_tagged == interval or not self.watching():
            return
        self.graph_interval_tagged = interval
        self.tagged_intervals.append(interval)
        nodes = []
        loss_output = self.probe.loss.last_output()
        for candidate in (loss_output, tensor):
            node = getattr(candidate, "grad_fn", None) if candidate is not None else None
            if node is not None and all(node is not other for other in nodes):
                nodes.append(node)
        for node in nodes:
            token = _GraphToken()
            self.graph_tokens_alive[interval] = self.graph_tokens_alive.get(interval, 0) + 1
            weakref.finalize(token, self._graph_freed, interval)
            try:
                node.register_prehook(_bind(token))
            except Exception:
                return
        for site in self.last_backward_sites[:1] + self.probe.loss.creation_sites(loss_output)[:1]:
            self.graph_sites[site] = self.graph_sites.get(site, 0) + 1

    def _graph_freed(self, interval: int) -> None:
        remaining = self.graph_tokens_alive.get(interval, 0) - 1
        if remaining <= 0:
            self.graph_tokens_alive.pop(interval, None)
        else:
            self.graph_tokens_alive[interval] = remaining

    def _record_for(self, optimizer) -> OptimizerRecord:
        record = self.optimizers.get(id(optimizer))
        known = self._optimizer_refs.get(id(optimizer))
        if record is not None and known is not None and known() is optimizer:
            return record
        params = [p for group in optimizer.param_groups for p in group["params"]]
        param_ids = {id(p) for p in params}
        same = next((r for r in self.records if r.param_ids == param_ids and r.params and
                     all(a is b for a, b in zip(r.params, params))), None)
        if same is not None:
            self.optimizers[id(optimizer)] = same
            self._optimizer_refs[id(optimizer)] = weakref.ref(optimizer)
            return same
        record = OptimizerRecord(optimizer, len(self.records) + 1)
        record.built_sites = self.probe.user_sites(depth=2)
        record.params = params
        record.param_ids = param_ids
        record.not_yet_received = {id(p): p for p in params if p.requires_grad}
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            stride = max(1, len(trainable) // MONITORED_PER_OPTIMIZER)
            for param in trainable[::stride][:MONITORED_PER_OPTIMIZER]:
                state = ParamState(param)
                self._hook_param(param, state)
                record.states.append(state)
        self.optimizers[id(optimizer)] = record
        self.records.append(record)
        self._optimizer_refs[id(optimizer)] = weakref.ref(optimizer)
        return record

    def _hook_param(self, param, state: ParamState) -> None:
        state_ref = weakref.ref(state)
        check = self

        def before_accumulate(grad):
            current = state_ref()
            if current is not None and current.watched:
                try:
                    check._on_contribution(current, grad)
                except Exception as error:
                    check.probe.internal_error("gradient hook", error)

        param.register_hook(before_accumulate)
        if hasattr(param, "register_post_accumulate_grad_hook"):
            def after_accumulate(tensor):
                current = state_ref()
                if current is not None and current.watched and tensor.grad is not None:
                    current.expected = (id(tensor.grad), tensor.grad._version)

            param.register_post_accumulate_grad_hook(after_accumulate)

    def _on_contribution(self, state: ParamState, grad) -> None:
        state.contributions += 1
        if state.verify and state.contributions == 1:
            state.first_norm = grad.detach().abs().sum()
        if state.after_step and not state.reset_seen:
            param = state.param_ref()
            current = param.grad if param is not None else None
            if current is None or state.expected is None or (id(current), current._version) != state.expected:
                state.reset_seen = True

    def before_step(self, optimizer, sites: List[Site]) -> Optional[float]:
        """Judge the interval since this optimizer's last step; returns the current loss value."""
        record = self._record_for(optimizer)
        probe = self.probe
        if sites:
            record.step_sites[sites[0]] = record.step_sites.get(sites[0], 0) + 1
            if record.first_site is None:
                record.first_site = sites
        self._mark_received(record)
        record.last_norm = None
        if record.watched:
            self._judge_interval(record)
        record.backward_count_at_step = probe.backward_count
        if not record.watched:
            return None  # reading the loss waits for the GPU: only on watched steps
        self.last_loss_value = self._current_loss()
        if self.last_loss_value is not None:
            probe.losses.append(self.last_loss_value)
        return self.last_loss_value

    def _judge_interval(self, record: OptimizerRecord) -> None:
        """DL101, DL102 and DL402 from what the gradient hooks saw since the previous step."""
        probe = self.probe
        record.watched_steps += 1
        backward_ran = probe.backward_count > record.backward_count_at_step
        contributed = [s for s in record.states if s.contributions > 0]
        grads = []
        for state in contributed:
            param = state.param_ref()
            grads.append(param.grad if param is not None else None)
        norms = self._norms(grads)
        finite_norms = [n for n in norms if n is not None]
        if finite_norms:
            record.last_norm = math.sqrt(sum(n * n for n in finite_norms))
            record.norms.append(record.last_norm)
            record.norm_steps.append(record.steps + 1)
        if backward_ran:
            record.backward_steps += 1
            if not contributed and record.states:
                record.unreached_steps += 1
        # DL101: parameters whose gradient was never reset since the previous step.
        judged = [s for s in contributed if s.after_step]
        if judged:
            record.checked_steps += 1
            stale = [s for s in judged if not s.reset_seen]
            if len(stale) >= ACCUMULATING_SHARE * len(judged):
                record.accumulating_steps += 1
                if not record.accumulating_example:
                    record.accumulating_example = (f"{len(stale)} of {len(judged)} monitored parameters"
                                                   f"{self._named(stale)} still held the previous step's gradient "
                                                   f"at step {record.steps + 1}")
            elif stale:
                record.partial_steps += 1
        # DL102: gradients that arrived in this interval and are gone (None or all zero) at step().
        if contributed:
            cleared = [i for i, state in enumerate(contributed) if norms[i] is None or norms[i] == 0.0]
            if len(cleared) >= CLEARED_SHARE * len(contributed):
                record.cleared_steps += 1
                verified = sum(1 for i in cleared if grads[i] is None or self._contribution_was_nonzero(contributed[i]))
                if verified >= CLEARED_SHARE * len(contributed):
                    record.cleared_verified += 1
                    if not record.cleared_example:
                        record.cleared_example = (f"{verified} of {len(contributed)} monitored parameters had "
                                                  f"received a gradient but held none at step {record.steps + 1}")
                else:
                    # Zeroed (not None) gradients: check from now on that the backward really contributed.
                    record.verify_contributions = True
                    for state in record.states:
                        state.verify = True
                for count, clear_sites in self.zero_grad_log:
                    if count == probe.backward_count:
                        for site in clear_sites[:1]:
                            record.clear_sites[site] = record.clear_sites.get(site, 0) + 1
        self.zero_grad_log.clear()
        for state in record.states:
            state.contributions = 0
            state.reset_seen = False
            state.first_norm = None

    def record_index(self, optimizer) -> int:
        return self._record_for(optimizer).index

    def after_step(self, optimizer) -> int:
        record = self._record_for(optimizer)
        record.steps += 1
        was_watched, record.watched = record.watched, watched_interval(record.steps + 1)
        if was_watched or record.watched:
            for state in record.states:
                state.watched = record.watched
                param = state.param_ref()
                grad = param.grad if param is not None and record.watched else None
                state.after_step = grad is not None
                state.expected = (id(grad), grad._version) if grad is not None else None
        self._watching = any(r.watched for r in self.records)
        self.zero_grad_log.clear()
        if was_watched:
            self._measure_kept_graphs()
        return max(r.steps for r in self.records)

    # -- helpers ------------------------------------------------------------------------------------

    def _contribution_was_nonzero(self, state: ParamState) -> bool:
        if state.first_norm is None:
            return False
        try:
            return float(state.first_norm) > 0.0
        except Exception:
            return False

    def _norms(self, grads) -> List[Optional[float]]:
        present = [(i, g.detach()) for i, g in enumerate(grads) if g is not None]
        norms: List[Optional[float]] = [None] * len(grads)
        if not present:
            return norms
        torch = self.torch
        try:
            values = torch._foreach_norm([g for _, g in present])
            flat = torch.stack(values).tolist()
        except Exception:
            flat = [float(g.float().norm()) for _, g in present]
        for (i, _), value in zip(present, flat):
            norms[i] = value
        return norms

    def _mark_received(self, record: OptimizerRecord) -> None:
        if not record.not_yet_received:
            return
        received = [key for key, p in record.not_yet_received.items() if p.grad is not None]
        for key in received:
            del record.not_yet_received[key]
            self.received_ids.add(key)

    def _current_loss(self) -> Optional[float]:
        tensor = self.probe.loss.last_output()
        if tensor is None:
            tensor = self.last_backward_value
        if tensor is None:
            return None
        try:
            value = tensor.detach()
            return float(value if value.numel() == 1 else value.float().mean())
        except Exception:
            return None

    def _measure_kept_graphs(self) -> None:
        current = self.probe.steps  # the interval that this step closes (0 for the first step)
        eligible = bisect.bisect_right(self.tagged_intervals, current - GRAPH_AGE)
        old_alive = sum(1 for interval in self.graph_tokens_alive if interval <= current - GRAPH_AGE)
        self.kept_graphs = (old_alive, eligible)
        if _kept_enough(old_alive, eligible) and (self.kept_graphs_best is None or old_alive > self.kept_graphs_best[0]):
            self.kept_graphs_best = (old_alive, eligible, current + 1)

    def all_optimized_ids(self) -> Set[int]:
        ids: Set[int] = set()
        for record in self.records:
            ids |= record.param_ids
        return ids

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        found: List[Observation] = []
        for record in self.records:
            found.extend(self._zero_grad_observations(record))
            found.extend(self._unreached_observations(record))
        found.extend(self._kept_graph_observations())
        for sites in self.detached_backwards[:1]:
            found.append(Observation("DL402", "backward() ran on a loss that does not require grad (no grad_fn): "
                                     "it was computed without any path to the parameters", True, sites,
                                     scope="function"))
        return found

    def label(self, record: OptimizerRecord) -> str:
        """`optimizer_d` (Adam), from the line that steps it (`optimizer_d.step()`, `scaler.step(optimizer_d)`);
        optimizer 2 (Adam) when the line does not say."""
        for site in self.step_sites(record)[:1]:
            match = _STEPPED_NAME.search(linecache.getline(site[0], site[1]))
            if match:
                owner, argument = match.groups()
                name = argument if argument and "scaler" in owner.lower() else owner
                return f"`{name}` ({record.name})"
        return f"optimizer {record.index} ({record.name})"

    def _named(self, states: List[ParamState]) -> str:
        names = self.probe.parameter_names()
        for state in states:
            param = state.param_ref()
            if param is not None and id(param) in names:
                return f" (such as {names[id(param)]})"
        return ""

    def step_sites(self, record: OptimizerRecord) -> List[Site]:
        ordered = sorted(record.step_sites, key=lambda site: -record.step_sites[site])
        return ordered[:1] + [s for s in (record.first_site or [])[1:]]

    def _zero_grad_observations(self, record: OptimizerRecord) -> List[Observation]:
        found = []
        label = self.label(record)
        sites = self.step_sites(record)
        checked = record.checked_steps
        if checked:
            if record.accumulating_steps >= MIN_STEPS and record.accumulating_steps * 2 >= checked:
                growth = ""
                if len(record.norms) >= 2 and record.norms[0] > 0:
                    growth = (f"; gradient norm went from {record.norms[0]:.3g} at step {record.norm_steps[0]} to "
                              f"{record.norms[-1]:.3g} at step {record.norm_steps[-1]}")
                found.append(Observation("DL101", f"{label}: at {record.accumulating_steps} of {checked} steps "
                                         f"checked ({record.steps} run) the gradients still held the previous step's contribution "
                                         f"({record.accumulating_example}){growth}", True, sites))
            elif record.accumulating_steps or record.partial_steps:
                found.append(Observation("DL101", f"{label}: below the confirmation threshold: some gradients "
                                         f"carried over at {record.accumulating_steps + record.partial_steps} of "
                                         f"{checked} steps (at least half the parameters at "
                                         f"{MIN_STEPS} or more steps needed)", False, sites, severity="info"))
            else:
                found.append(Observation("DL101", f"{label}: gradients were reset between all {checked} steps "
                                         f"checked", summary=True))
        watched = record.watched_steps
        if watched:
            clear_sites = sorted(record.clear_sites, key=lambda site: -record.clear_sites[site])
            if record.cleared_verified >= MIN_STEPS and record.cleared_verified * 2 >= watched:
                found.append(Observation("DL102", f"{label}: at {record.cleared_verified} of {watched} steps "
                                         f"checked ({record.steps} run) the gradients from backward() were cleared before step() "
                                         f"({record.cleared_example}), so the optimizer stepped with nothing",
                                         True, clear_sites[:2] + sites))
            elif record.cleared_steps:
                found.append(Observation("DL102", f"{label}: below the confirmation threshold: gradients were "
                                         f"zero at {record.cleared_steps} of {watched} steps, but the "
                                         f"backward pass may itself have produced zeros", False,
                                         clear_sites[:2] + sites, severity="info"))
            else:
                found.append(Observation("DL102", f"{label}: gradients were present at all {watched} steps checked",
                                         summary=True))
        return found

    def _unreached_observations(self, record: OptimizerRecord) -> List[Observation]:
        label = self.label(record)
        backward_sites = sorted(self.backward_sites, key=lambda site: -self.backward_sites[site])[:1]
        if record.unreached_steps >= MIN_STEPS and record.unreached_steps * 2 >= record.backward_steps:
            loss_sites = self.probe.loss.training_sites()[:1]
            return [Observation("DL402", f"{label}: backward() ran before {record.unreached_steps} of "
                                f"{record.backward_steps} steps but no gradient reached any of its "
                                f"{len(record.param_ids)} parameters: the loss is cut off from the model",
                                True, backward_sites + loss_sites + self.step_sites(record), scope="function")]
        if record.backward_steps:
            return [Observation("DL402", f"{label}: backward() reached its parameters at "
                                f"{record.backward_steps - record.unreached_steps} of {record.backward_steps} steps",
                                summary=True)]
        return []

    def _kept_graph_observations(self) -> List[Observation]:
        old_alive, eligible = self.kept_graphs
        sites = sorted(self.graph_sites, key=lambda site: -self.graph_sites[site])
        if self.kept_graphs_best is not None:
            kept, older, step = self.kept_graphs_best
            return [Observation("DL104", f"at step {step}, the autograd graphs of {kept} of {older} watched steps' "
                                f"losses were still alive {GRAPH_AGE} or more steps later: something keeps the loss "
                                f"tensor (a running total or a list of losses), so memory grows every step",
                                True, sites[:2], scope="function")]
        if eligible <= 0:
            return []
        if old_alive:
            return [Observation("DL104", f"below the confirmation threshold: {old_alive} of {eligible} older loss "
                                f"graphs were still alive", False, sites[:2], severity="info", scope="function")]
        return [Observation("DL104", f"every step's loss graph was freed within {GRAPH_AGE - 1} steps",
                            summary=True)]


def _kept_enough(old_alive: int, eligible: int) -> bool:
    return eligible > 0 and old_alive >= KEPT_GRAPHS_MIN and old_alive >= KEPT_GRAPHS_SHARE * eligible


def _bind(token):
    def keep_alive(*args, _token=token):
        return None

    return keep_alive
