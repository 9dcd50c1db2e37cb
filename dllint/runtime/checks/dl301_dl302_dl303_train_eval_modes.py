"""Train/eval mode observations, from the root-module forward hook, Module.train() and F.dropout.

DL301 a model evaluated under no_grad while its dropout/batch-norm layers are in training mode,
DL302 an optimizer step after a forward in evaluation mode, DL303 F.dropout without
training=self.training dropping activations inside a module in evaluation mode.

Teacher and EMA models (run in train mode under no_grad, parameters in no optimizer) and frozen
batch-norm fine-tuning (the model in train mode, only its BN layers in eval) are not evidence.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from dllint.runtime.observations import Observation, Site

# DL302: a forward counts as "in evaluation mode" when the root is in eval mode and at least this share of
# its mode-dependent layers too.
EVAL_LAYER_SHARE = 0.5
# Default-training dropout functions (alpha_dropout and feature_alpha_dropout default to training=False).
DROPOUT_FUNCTIONS = ("dropout", "dropout1d", "dropout2d", "dropout3d")


class NoGradForward:
    """A root forward under no_grad while mode-dependent layers were in training mode."""

    __slots__ = ("root_id", "root_name", "sites", "interval", "active", "training_time")

    def __init__(self, root_id, root_name, sites, interval, active):
        self.root_id = root_id
        self.root_name = root_name
        self.sites = sites
        self.interval = interval
        self.active = active
        self.training_time = False


class ModeCheck:
    ATTRIBUTE = "mode"
    ORDER = 30
    CODES = ("DL301", "DL302", "DL303")

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self._layers: Dict[int, Tuple[Any, List[Any]]] = {}
        self.nograd_forwards: List[NoGradForward] = []
        self.nograd_clean = 0
        self._pending_nograd: Dict[int, List[NoGradForward]] = {}
        self._pending_eval: Dict[int, Tuple[Any, List[Site], str]] = {}
        self.eval_sites: Dict[int, List[Site]] = {}
        self.eval_steps: Dict[Tuple[str, Site], Dict[str, Any]] = {}
        self.train_mode_steps = 0
        self.dropout_calls: Dict[Site, Dict[str, Any]] = {}
        self.dropout_checked = 0

    def install(self) -> None:
        torch = self.torch
        original_train = torch.nn.Module.train
        check = self

        def train(self_module, mode: bool = True):
            result = original_train(self_module, mode)
            if not mode and not check.probe.paused:  # not the runtime's own replays
                try:
                    sites = check.probe.user_sites(depth=2)
                    if sites:
                        check.eval_sites[id(self_module)] = sites
                except Exception as error:
                    check.probe.internal_error("Module.train wrapper", error)
            return result

        train.__wrapped__ = original_train
        torch.nn.Module.train = train
        functional = torch.nn.functional
        for name in DROPOUT_FUNCTIONS:
            original = getattr(functional, name, None)
            if original is not None:
                setattr(functional, name, self._wrap_dropout(name, original))

    def _wrap_dropout(self, name: str, original):
        check = self

        def dropout(*args, **kwargs):
            if len(args) < 3 and "training" not in kwargs:
                try:
                    check.on_default_dropout(name, args, kwargs)
                except Exception as error:
                    check.probe.internal_error(f"{name} wrapper", error)
            return original(*args, **kwargs)

        dropout.__wrapped__ = original
        dropout.__name__ = name
        return dropout

    # -- mode-dependent layers ----------------------------------------------------------------------

    def mode_layers(self, module) -> List[Any]:
        """Dropout with p > 0, batch norm, instance norm tracking statistics, RNNs with dropout."""
        cached = self._layers.get(id(module))
        if cached is not None and cached[0] is module:
            return cached[1]
        nn = self.torch.nn
        layers = []
        for sub in module.modules():
            if isinstance(sub, nn.modules.dropout._DropoutNd):
                if sub.p > 0:
                    layers.append(sub)
            elif isinstance(sub, nn.modules.batchnorm._BatchNorm):
                layers.append(sub)
            elif isinstance(sub, nn.modules.instancenorm._InstanceNorm) and sub.track_running_stats:
                layers.append(sub)
            elif isinstance(sub, nn.RNNBase) and sub.dropout > 0:
                layers.append(sub)
        self._layers[id(module)] = (module, layers)
        return layers

    # -- events -------------------------------------------------------------------------------------

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        layers = self.mode_layers(module)
        if not layers:
            return
        interval = self.probe.steps
        if not grad_enabled:
            active = [layer for layer in layers if layer.training]
            if module.training and active:
                sites = self.probe.user_sites(depth=4)
                event = NoGradForward(id(module), record.name, sites, interval, _describe(active))
                self.nograd_forwards.append(event)
                del self.nograd_forwards[:-200]
                self._pending_nograd.setdefault(id(module), []).append(event)
            else:
                self.nograd_clean += 1
            return
        # A no_grad forward followed directly by a gradient-carrying forward of the same model, before the
        # next step, is part of training (pseudo-labels, targets). An evaluation loop runs several no_grad
        # forwards in a row, and only its last one can be followed that way.
        pending = self._pending_nograd.pop(id(module), [])
        if pending and pending[-1].interval == interval:
            pending[-1].training_time = True
        if not module.training:
            in_eval = [layer for layer in layers if not layer.training]
            if len(in_eval) >= EVAL_LAYER_SHARE * len(layers):
                self._pending_eval[id(module)] = (module, self.eval_sites.get(id(module), []), _describe(in_eval))
        else:
            self._pending_eval.pop(id(module), None)

    def wants_step_sites(self) -> bool:
        return bool(self._pending_eval)

    def on_step(self, optimizer, step_sites: List[Site], loss_value) -> None:
        if not self._pending_eval:
            self.train_mode_steps += 1
            return
        optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for key, (module, eval_sites, layers) in list(self._pending_eval.items()):
            if any(id(p) in optimized for p in module.parameters()):
                site_key = (type(module).__name__, (eval_sites or step_sites or [None])[0])
                entry = self.eval_steps.setdefault(site_key, {"steps": 0, "sites": eval_sites[:1] + step_sites,
                                                             "layers": layers, "first": self.probe.steps + 1})
                entry["steps"] += 1
        self._pending_eval.clear()

    def on_default_dropout(self, name: str, args, kwargs) -> None:
        stack = self.probe.module_stack
        p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
        if not stack or not p:
            return
        self.dropout_checked += 1
        enclosing = stack[-1]
        if enclosing.training:
            return
        sites = self.probe.user_sites(depth=3)
        if not sites:
            return
        entry = self.dropout_calls.setdefault(sites[0], {"calls": 0, "sites": sites, "name": name,
                                                         "module": type(enclosing).__name__, "p": p})
        entry["calls"] += 1

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        return self._missing_eval() + self._missing_train() + self._functional_dropout()

    def _missing_eval(self) -> List[Observation]:
        optimized = self.probe.optimizer_param_ids()
        any_steps = self.probe.steps > 0
        grouped: Dict[Tuple[int, Site], List[NoGradForward]] = {}
        for event in self.nograd_forwards:
            if event.sites:
                grouped.setdefault((event.root_id, event.sites[0]), []).append(event)
        found = []
        for (root_id, _), events in grouped.items():
            first = events[0]
            evaluation = [e for e in events if not e.training_time]
            record = self.probe.roots.get(root_id)
            trained = record is not None and bool(record.param_ids() & optimized)
            # A model whose parameters no optimizer holds, while another model trains, is a teacher/EMA copy.
            if evaluation and (trained or not any_steps):
                found.append(Observation("DL301", f"{first.root_name} ran {len(evaluation)} forward(s) under no_grad "
                                         f"while in training mode, with {first.active} active", True, first.sites))
            else:
                why = ("its parameters are in no optimizer (a teacher or EMA copy)" if not trained
                       else "each was followed by a training forward of the same model (pseudo-labels/targets)")
                found.append(Observation("DL301", f"below the confirmation threshold: {first.root_name} ran "
                                         f"{len(events)} forward(s) under no_grad in training mode, but {why}",
                                         False, first.sites, severity="info"))
        if not grouped and (self.nograd_clean or self.nograd_forwards == []):
            found.append(Observation("DL301", f"{self.nograd_clean} forward(s) under no_grad ran with dropout and "
                                     f"batch norm in evaluation mode", summary=True))
        return found

    def _missing_train(self) -> List[Observation]:
        found = []
        for (root_name, _), entry in self.eval_steps.items():
            found.append(Observation("DL302", f"{entry['steps']} optimizer step(s), from step {entry['first']} on, "
                                     f"followed a forward of {root_name} in evaluation mode ({entry['layers']} "
                                     f"inactive): those steps trained without dropout and with frozen batch-norm "
                                     f"statistics", True, entry["sites"]))
        if not found and self.train_mode_steps:
            found.append(Observation("DL302", f"the models were in training mode at all {self.train_mode_steps} "
                                     f"steps", summary=True))
        return found

    def _functional_dropout(self) -> List[Observation]:
        found = []
        for entry in self.dropout_calls.values():
            found.append(Observation("DL303", f"F.{entry['name']}(p={entry['p']}) ran {entry['calls']} time(s) with "
                                     f"training=True inside {entry['module']}.forward while {entry['module']} was in "
                                     f"evaluation mode: evaluation outputs are randomly dropped", True,
                                     entry["sites"]))
        if not found and self.dropout_checked:
            found.append(Observation("DL303", f"{self.dropout_checked} F.dropout call(s) without training= ran only "
                                     f"in modules in training mode", summary=True))
        return found


def _describe(layers: List[Any]) -> str:
    counts: Dict[str, int] = {}
    for layer in layers:
        name = type(layer).__name__
        if hasattr(layer, "p") and isinstance(getattr(layer, "p"), float):
            name += f"(p={layer.p})"
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in counts.items())
