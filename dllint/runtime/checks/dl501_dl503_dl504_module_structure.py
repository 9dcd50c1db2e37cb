"""Module-structure observations, from detailed recordings of the first forwards of every model.

DL504 one module object used as several layers (registered under several names and run several times
in one forward, or a normalization layer run from several lines), DL501 a layer called in the forward
but not registered (kept in a plain list or dict), so no optimizer holds its parameters, DL503 a
registered submodule with parameters that never runs and never receives a gradient.

Where a module was constructed and registered is recorded from Module.__init__ and the global
registration hook, since static findings point there.
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable, Dict, List, Set, Tuple

from dllint.runtime.observations import Observation, Site

# DL503 needs this many gradient-carrying forwards of the model before a submodule counts as unused.
UNUSED_AFTER_FORWARDS = 2


class ModuleCheck:
    ATTRIBUTE = "modules"
    ORDER = 50
    CODES = ("DL501", "DL503", "DL504")

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.constructed: "weakref.WeakKeyDictionary[Any, Site]" = weakref.WeakKeyDictionary()
        self.registered: "weakref.WeakKeyDictionary[Any, List[Site]]" = weakref.WeakKeyDictionary()
        self._calls: Dict[int, List[Any]] = {}
        self._called_modules: Dict[int, Any] = {}
        self._parents: Dict[int, int] = {}
        self.reused: Dict[Any, Observation] = {}
        self.unregistered: List[Any] = []  # (weakref to module, root name, call sites)
        self._unregistered_ids: Set[int] = set()
        self._norm_outputs: Dict[int, List[Any]] = {}
        self._chained: Set[int] = set()
        nn = self.torch.nn
        self._norm_types = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                            nn.modules.instancenorm._InstanceNorm)

    def install(self) -> None:
        torch = self.torch
        original_init = torch.nn.Module.__init__
        check = self

        def module_init(self_module, *args, **kwargs):
            original_init(self_module, *args, **kwargs)
            try:
                site = check._construction_site(self_module, sys._getframe(1))
                if site is not None:
                    check.constructed[self_module] = site
            except Exception as error:
                check.probe.internal_error("Module.__init__ wrapper", error)

        module_init.__wrapped__ = original_init
        torch.nn.Module.__init__ = module_init
        from torch.nn.modules import module as module_module

        if hasattr(module_module, "register_module_module_registration_hook"):
            module_module.register_module_module_registration_hook(self._registered)

    def _construction_site(self, module, frame):
        """The line that built the module: above the __init__ methods of its own class chain."""
        sources = self.probe.sources
        while frame is not None:
            if frame.f_code.co_name == "__init__" and frame.f_locals.get("self") is module:
                frame = frame.f_back
                continue
            if sources.real_path(frame.f_code.co_filename) is not None:
                return sources.site_of(frame)
            frame = frame.f_back
        return None

    def _registered(self, parent, name, submodule):
        if submodule is None:
            return None
        try:
            site = self.probe.user_site(depth=2)
            if site is not None:
                sites = self.registered.get(submodule)
                if sites is None:
                    self.registered[submodule] = [site]
                elif site not in sites and len(sites) < 8:
                    sites.append(site)
        except Exception as error:
            self.probe.internal_error("registration hook", error)
        return None

    def sites_of(self, module) -> List[Site]:
        sites = list(self.registered.get(module, []))
        constructed = self.constructed.get(module)
        if constructed is not None and constructed not in sites:
            sites.append(constructed)
        return sites

    # -- detailed forwards --------------------------------------------------------------------------

    def begin_sample(self, record, root) -> None:
        self._calls = {}
        self._called_modules = {}
        self._parents = {}
        self._norm_outputs = {}
        self._chained = set()

    def nested_call(self, module, parent, args) -> None:
        site = self.probe.user_site(depth=3)
        key = id(module)
        self._calls.setdefault(key, []).append((id(parent), site))
        self._called_modules[key] = module
        self._parents.setdefault(key, id(parent))
        earlier = self._norm_outputs.get(key)
        if earlier and key not in self._chained and _depends_on(args, earlier, self.torch):
            self._chained.add(key)

    def nested_return(self, module, output) -> None:
        if isinstance(module, self._norm_types) and isinstance(output, self.torch.Tensor) and output.grad_fn:
            self._norm_outputs.setdefault(id(module), []).append(output.grad_fn)

    def end_sample(self, root) -> None:
        names: Dict[int, List[str]] = {}
        for name, sub in root.named_modules(remove_duplicate=False):
            names.setdefault(id(sub), []).append(name)
        grad = self.torch.is_grad_enabled()
        self._find_reuse(root, names)
        if grad:
            self._find_unregistered(root, names)
        self._calls = {}
        self._called_modules = {}
        self._norm_outputs = {}

    def _find_reuse(self, root, names: Dict[int, List[str]]) -> None:
        # Shallowest first: a shared block is reported, not each of its layers; but a shared container that
        # is never called itself (a ModuleList) leaves its called children to be reported.
        order = sorted(self._calls, key=lambda key: min((n.count(".") for n in names.get(key, [])), default=0))
        shared_reported: Set[int] = set()
        for key in order:
            calls = self._calls[key]
            if len(calls) < 2:
                continue
            module = self._called_modules[key]
            if module in self.reused:
                continue
            if not _has_state(module):
                continue
            module_names = names.get(key, [])
            call_sites = [site for _, site in calls if site is not None]
            if len(module_names) > 1:
                parents = {name.rpartition(".")[0] for name in module_names}
                parent_ids = {id(root.get_submodule(p)) if p else id(root) for p in parents}
                if parent_ids & shared_reported:
                    shared_reported.add(key)
                    continue
                shared_reported.add(key)
                shown = ", ".join(f"{type(root).__name__}.{n}" for n in module_names[:4])
                statistics = _stateful_layer(module, self._norm_types)
                if statistics is None:
                    # Weights shared between places without running statistics: weight tying, or layers
                    # shared across steps on purpose (TabNet): a design, not evidence of the bug.
                    self.reused[module] = Observation(
                        "DL504", f"{shown} are one {type(module).__name__} object run {len(calls)} times in one "
                                 f"forward: they share weights, which weight-tied designs do on purpose (no "
                                 f"normalization layer or running statistics are shared)", False, self.sites_of(module) + _distinct(call_sites)[:2],
                        severity="info")
                    continue
                inside = "" if statistics is module else f", its {type(statistics).__name__} included"
                self.reused[module] = Observation(
                    "DL504", f"{shown} are one {type(module).__name__} object (one set of weights and statistics"
                             f"{inside}), run {len(calls)} times in one forward", True,
                    self.sites_of(module) + _distinct(call_sites)[:2])
            elif isinstance(module, self._norm_types) and key in self._chained:
                # The same normalization layer applied to its own output's descendants: several depths of one
                # network (two branches of a siamese network, side by side, are weight sharing on purpose).
                lines = _distinct([site[:2] for site in call_sites])
                self.reused[module] = Observation(
                    "DL504", f"{type(root).__name__}.{module_names[0] if module_names else '?'} "
                             f"({type(module).__name__}) ran {len(calls)} times in one forward, each time on the "
                             f"output of the previous depth ({len(lines)} call lines), so those depths share one set "
                             f"of weights and statistics", True,
                    _distinct(call_sites)[:3] + self.sites_of(module))

    def _find_unregistered(self, root, names: Dict[int, List[str]]) -> None:
        for key, module in self._called_modules.items():
            if key in names or key in self._unregistered_ids:
                continue
            if not any(p.requires_grad for p in module.parameters()):
                continue
            parent = self._parents.get(key)
            if parent is not None and parent not in names:
                continue  # inside another unregistered module: that one is reported
            self._unregistered_ids.add(key)
            call_sites = [site for _, site in self._calls.get(key, []) if site is not None]
            self.unregistered.append((weakref.ref(module), type(root).__name__,
                                      self.sites_of(module) + _distinct(call_sites)[:1]))

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        found = list(self.reused.values())
        found.extend(self._unregistered_observations())
        found.extend(self._unused_observations())
        found.extend(self._cut_off_observations())
        return found

    def _unregistered_observations(self) -> List[Observation]:
        optimized = self.probe.optimizer_param_ids()
        found = []
        for reference, root_name, sites in self.unregistered:
            module = reference()
            if module is None:
                continue
            params = [p for p in module.parameters() if p.requires_grad]
            count = sum(p.numel() for p in params)
            kind = type(module).__name__
            if not any(id(p) in optimized for p in params):
                found.append(Observation("DL501", f"a {kind} ran inside {root_name}.forward but is not a registered "
                                         f"submodule of {root_name} (kept in a plain list, dict or tuple): none of "
                                         f"its {count} parameters is in an optimizer, so it never trains", True,
                                         sites))
            else:
                found.append(Observation("DL501", f"below the confirmation threshold: a {kind} ran inside "
                                         f"{root_name}.forward without being a registered submodule; its parameters "
                                         f"are in an optimizer, but .to(), state_dict() and train()/eval() miss it",
                                         False, sites, severity="info"))
        return found

    def silent_submodules(self, ran: Callable[[Any], bool]) -> List[Tuple[Any, str, Any, int]]:
        """(root record, name, submodule, parameter count) of the outermost submodules of every trained model
        (2+ gradient-carrying forwards) whose trainable parameters never received a gradient and for which
        `ran(submodule, parameters)` holds."""
        received = self.probe.training.received_ids
        found = []
        for record, root in self.probe.trained_roots():
            if record.grad_forwards < UNUSED_AFTER_FORWARDS:
                continue
            reported: List[str] = []
            for name, sub in root.named_modules():
                if not name or any(name.startswith(prefix + ".") for prefix in reported):
                    continue
                params = [p for p in sub.parameters() if p.requires_grad]
                if not params or not ran(sub, params):
                    continue
                if any(id(p) in received or p.grad is not None for p in params):
                    continue
                reported.append(name)
                found.append((record, name, sub, sum(p.numel() for p in params)))
        return found

    def _unused_observations(self) -> List[Observation]:
        called = self.probe.called_module_ids
        never_ran = self.silent_submodules(lambda sub, params: not any(id(m) in called for m in sub.modules()))
        return [Observation("DL503", f"{record.name}.{name} ({type(sub).__name__}, {count} parameters) never ran in "
                                     f"{record.grad_forwards} forwards and its parameters never received a gradient",
                            True, self.sites_of(sub))
                for record, name, sub, count in never_ran]

    def _cut_off_observations(self) -> List[Observation]:
        """DL402 for part of a model: a trained submodule ran with gradients on at every forward, yet none of
        its parameters ever received a gradient: its output does not reach the loss (a term detached, or
        added as a number with .item()). Submodules upstream of a graph cut inside the forward are DL404's."""
        training = self.probe.training
        if not training.backward_sites:
            return []
        ran = self.probe.grad_called_module_ids
        optimized = self.probe.optimizer_param_ids()
        upstream_of_cut = self.probe.graph_cut.upstream_module_ids()
        cut_off = self.silent_submodules(lambda sub, params: id(sub) in ran and id(sub) not in upstream_of_cut
                                         and all(id(p) in optimized for p in params))
        sites = training.last_backward_sites[:1] + self.probe.loss.training_sites()[:2]
        return [Observation("DL402", f"{record.name}.{name} ({type(sub).__name__}, {count} parameters) ran with "
                                     f"gradients on in {record.grad_forwards} forwards, but its parameters never "
                                     f"received a gradient: its output does not reach the loss (a term detached, or "
                                     f"added as a number with .item())", True, sites, scope="function")
                for record, name, sub, count in cut_off]


def _depends_on(args, nodes, torch, limit: int = 5000) -> bool:
    """Whether any tensor in args was computed from one of the given autograd nodes."""
    targets = {id(node) for node in nodes}
    frontier = [a.grad_fn for a in args if isinstance(a, torch.Tensor) and a.grad_fn is not None]
    seen = set()
    while frontier and len(seen) < limit:
        node = frontier.pop()
        if id(node) in targets:
            return True
        if id(node) in seen:
            continue
        seen.add(id(node))
        frontier.extend(n for n, _ in node.next_functions if n is not None)
    return False


def _stateful_layer(module, norm_types):
    """The module itself, or its first descendant, that is a normalization layer or holds buffers (running
    statistics); None for plain weights (Linear, Conv, Embedding)."""
    for layer in module.modules():
        if isinstance(layer, norm_types) or any(True for _ in layer.buffers(recurse=False)):
            return layer
    return None


def _has_state(module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _distinct(sites: List[Site]) -> List[Site]:
    seen = []
    for site in sites:
        if site not in seen:
            seen.append(site)
    return seen
