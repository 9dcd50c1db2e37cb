"""DL404 while a script trains: a graph cut at the line of a static DL404 finding, shown by the
parameters it starves of gradient.

Installed only when the static analysis found DL404, and judged only at those lines:
- a cut inside a forward: a tensor with autograd history leaves it inside a module's forward (.detach(),
  .numpy(), .tolist(), .data) and a tensor of the same shape is created from it at the finding's line
  (torch.from_numpy / torch.tensor / torch.as_tensor), or the finding's line itself reads .data /
  .detach() of it. The parameters upstream of the cut are read from the autograd graph of the tensor
  that left (its AccumulateGrad leaves); confirmed when none of them received a gradient over the run.
- a loss term computed from parameters' .data: the finding's line reads .data of parameters an
  optimizer holds, with gradients on and outside any forward, and the loss that the next backward()
  receives adds a term with no autograd history (an Add/Sub node of the loss graph with a missing
  input); confirmed at MIN_STEPS steps. Such a term changes the loss value and no gradient.
"""

from __future__ import annotations

import sys
import weakref
from typing import Dict, List, Optional, Set, Tuple

from dllint.runtime.hooks import wrap_calls
from dllint.runtime.observations import Observation, Site, shape_text

MIN_STEPS = 2
# Exits recorded per root forward, and cut sites whose upstream graph is walked.
MAX_EXITS = 16
GRAPH_NODES = 20000
# Loss graph nodes followed from the root when looking for a term without history.
ARITHMETIC_NODES = {"AddBackward0", "SubBackward0", "MulBackward0", "DivBackward0", "AddBackward1",
                    "SubBackward1", "MulBackward1", "DivBackward1", "MeanBackward0", "SumBackward0",
                    "NegBackward0"}
TERM_SEARCH_NODES = 64
NAMED_PARAMETERS = 3


class ForwardCut:
    def __init__(self, root_name: str, exit_how: str, exit_site: Site, entry: str, sites: List[Site],
                 shape: tuple, upstream: Dict[int, object]):
        self.root_name = root_name
        self.exit_how = exit_how
        self.exit_site = exit_site
        self.entry = entry
        self.sites = sites
        self.shape = shape
        self.upstream = upstream  # id -> weak reference to each parameter upstream of the cut
        self.count = 1


class DataRead:
    """`.data` of trained parameters read at a finding's line outside any forward."""

    def __init__(self, sites: List[Site]):
        self.sites = sites
        self.params: Dict[int, object] = {}
        self.steps_read: Set[int] = set()
        self.steps_with_constant_term: Set[int] = set()
        self.backward_site: Optional[Site] = None


class GraphCutCheck:
    ATTRIBUTE = "graph_cut"
    ORDER = 45
    CODES = ("DL404",)
    UNOBSERVABLE = {"DL404": "no tensor with autograd history was cut inside a forward on this line, and no "
                             ".data of trained parameters was read here before a backward() "
                             "(an in-place write to .data inside forward is not observed)"}

    def __init__(self, probe):
        self.probe = probe
        self.torch = probe.torch
        self.targets = probe.finding_lines("DL404")
        self.exits: List[Tuple[tuple, str, Site, object]] = []  # (shape, how, site, grad_fn) of this forward
        self.cuts: Dict[Site, ForwardCut] = {}
        self.reads: Dict[Site, DataRead] = {}
        self.pending_reads: List[DataRead] = []

    # -- installation -------------------------------------------------------------------------------

    def install(self) -> None:
        if not self.targets:
            return
        torch = self.torch
        for name in ("detach", "numpy", "tolist"):
            setattr(torch.Tensor, name, self._wrap_exit(name, getattr(torch.Tensor, name)))
        for name in ("from_numpy", "tensor", "as_tensor"):
            setattr(torch, name, self._wrap_entry(name, getattr(torch, name)))
        data = torch._C.TensorBase.__dict__["data"]
        check = self

        def read_data(tensor):
            value = data.__get__(tensor)
            if tensor.requires_grad and check.torch.is_grad_enabled():
                caller = sys._getframe(1)
                if check.probe.sources.real_path(caller.f_code.co_filename) is not None:
                    try:
                        check.on_data(tensor, value, caller)
                    except Exception as error:
                        check.probe.internal_error(".data wrapper", error)
            return value

        def write_data(tensor, value):
            data.__set__(tensor, value)

        torch.Tensor.data = property(read_data, write_data)
        wrap_calls(self.probe, torch.autograd, ["backward"], self.on_backward)

    def _wrap_exit(self, name: str, original):
        check = self
        probe = self.probe

        def leaving_autograd(tensor, *args, **kwargs):
            if probe.module_stack and tensor.grad_fn is not None and check.torch.is_grad_enabled():
                caller = sys._getframe(1)
                if probe.sources.real_path(caller.f_code.co_filename) is not None:
                    try:
                        check.on_exit(f".{name}()", tensor, caller)
                    except Exception as error:
                        check.probe.internal_error(f"{name} wrapper", error)
            return original(tensor, *args, **kwargs)

        leaving_autograd.__wrapped__ = original
        leaving_autograd.__name__ = name
        return leaving_autograd

    def _wrap_entry(self, name: str, original):
        check = self
        probe = self.probe

        def creating_tensor(*args, **kwargs):
            result = original(*args, **kwargs)
            if probe.module_stack and check.exits:
                caller = sys._getframe(1)
                path = probe.sources.real_path(caller.f_code.co_filename)
                if path is not None and (path, caller.f_lineno) in check.targets:
                    try:
                        check.on_entry(f"torch.{name}()", result, caller)
                    except Exception as error:
                        check.probe.internal_error(f"{name} wrapper", error)
            return result

        creating_tensor.__wrapped__ = original
        creating_tensor.__name__ = name
        return creating_tensor

    # -- events -------------------------------------------------------------------------------------

    def on_root_forward(self, record, module, args, grad_enabled: bool) -> None:
        self.exits = []

    def on_exit(self, how: str, tensor, caller) -> None:
        if len(self.exits) >= MAX_EXITS:
            return
        site = self.probe.sources.site_of(caller)
        self.exits.append((tuple(tensor.shape), how, site, tensor.grad_fn))
        if (site[0], site[1]) in self.targets:
            self._cut(how, site, how, caller, tuple(tensor.shape), tensor.grad_fn)

    def on_data(self, tensor, value, caller) -> None:
        if self.probe.module_stack:
            if tensor.grad_fn is not None:
                self.on_exit(".data", tensor, caller)
            return
        path = self.probe.sources.real_path(caller.f_code.co_filename)
        if (path, caller.f_lineno) not in self.targets or tensor.grad_fn is not None:
            return
        if id(tensor) not in self.probe.optimizer_param_ids():
            return
        site = self.probe.sources.site_of(caller)
        read = self.reads.get(site)
        if read is None:
            read = self.reads[site] = DataRead([site] + self.probe.sources.user_sites(caller.f_back))
        if len(read.params) < 256:
            read.params[id(tensor)] = weakref.ref(tensor)
        read.steps_read.add(self.probe.steps)
        if read not in self.pending_reads:
            self.pending_reads.append(read)

    def on_entry(self, how: str, result, caller) -> None:
        if not isinstance(result, self.torch.Tensor) or result.numel() < 2:
            return
        shape = tuple(result.shape)
        for exit_shape, exit_how, exit_site, node in reversed(self.exits):
            if exit_shape == shape:
                self._cut(exit_how, exit_site, how, caller, shape, node)
                return

    def _cut(self, exit_how: str, exit_site: Site, entry: str, caller, shape: tuple, node) -> None:
        site = self.probe.sources.site_of(caller)
        known = self.cuts.get(site)
        if known is not None:
            known.count += 1
            return
        root = self.probe.module_stack[0] if self.probe.module_stack else None
        root_name = type(root).__name__ if root is not None else "the model"
        self.cuts[site] = ForwardCut(root_name, exit_how, exit_site, entry,
                                     [site, exit_site] + self.probe.sources.user_sites(caller.f_back),
                                     shape, _upstream_parameters(node))

    def on_backward(self, name: str, original, args, kwargs) -> None:
        if not self.pending_reads:
            return
        tensors = args[0] if args else kwargs.get("tensors")
        tensor = tensors[0] if isinstance(tensors, (tuple, list)) and tensors else tensors
        reads, self.pending_reads = self.pending_reads, []
        if not isinstance(tensor, self.torch.Tensor) or tensor.grad_fn is None:
            return
        if _has_term_without_history(tensor.grad_fn):
            sites = self.probe.user_sites(depth=3)
            for read in reads:
                read.steps_with_constant_term.add(self.probe.steps)
                if sites and read.backward_site is None:
                    read.backward_site = sites[0]

    # -- queries for other checks -------------------------------------------------------------------

    def upstream_module_ids(self) -> Set[int]:
        """Submodules of the trained models whose parameters all lie upstream of an observed cut."""
        upstream = {key for cut in self.cuts.values() for key in cut.upstream}
        if not upstream:
            return set()
        found = set()
        for _, root in self.probe.trained_roots():
            for sub in root.modules():
                params = [id(p) for p in sub.parameters()]
                if params and all(key in upstream for key in params):
                    found.add(id(sub))
        return found

    # -- results ------------------------------------------------------------------------------------

    def finish(self) -> List[Observation]:
        found = [observation for cut in self.cuts.values() for observation in self._cut_observations(cut)]
        found.extend(observation for read in self.reads.values() for observation in self._read_observations(read))
        return found

    def _cut_observations(self, cut: ForwardCut) -> List[Observation]:
        params = [ref() for ref in cut.upstream.values()]
        params = [p for p in params if p is not None and p.requires_grad]
        if not params:
            return [Observation("DL404", f"a {shape_text(cut.shape)} tensor left autograd ({cut.exit_how} at line "
                                         f"{cut.exit_site[1]}) inside {cut.root_name}.forward, but no trainable "
                                         f"parameter lies upstream of it", False, cut.sites, summary=True)]
        received = self.probe.training.received_ids
        fed = [p for p in params if id(p) in received or p.grad is not None]
        names = self.probe.parameter_names()
        listed = ", ".join(names.get(id(p), "?") for p in params[:NAMED_PARAMETERS])
        more = f" and {len(params) - NAMED_PARAMETERS} more" if len(params) > NAMED_PARAMETERS else ""
        values = sum(p.numel() for p in params)
        what = (f"a {shape_text(cut.shape)} tensor left autograd inside {cut.root_name}.forward ({cut.exit_how} at "
                f"line {cut.exit_site[1]}) and came back without history ({cut.entry}, {cut.count} forwards)")
        upstream = f"the {len(params)} parameter tensors upstream of the cut ({listed}{more}; {values:,} values)"
        if fed:
            return [Observation("DL404", f"{what}, but {len(fed)} of {upstream} received gradients by another path",
                                False, cut.sites, summary=True)]
        steps = self.probe.steps
        return [Observation("DL404", f"{what}: {upstream} received no gradient in {steps} optimizer steps, so they "
                                     f"keep their initialization", steps >= 1, cut.sites)]

    def _read_observations(self, read: DataRead) -> List[Observation]:
        params = [ref() for ref in read.params.values()]
        params = [p for p in params if p is not None]
        names = self.probe.parameter_names()
        listed = ", ".join(names.get(id(p), "?") for p in params[:NAMED_PARAMETERS])
        more = f" and {len(params) - NAMED_PARAMETERS} more" if len(params) > NAMED_PARAMETERS else ""
        what = (f"this line read .data of {len(params)} parameter tensors an optimizer trains ({listed}{more}) with "
                f"gradients on, at {len(read.steps_read)} steps")
        constant = len(read.steps_with_constant_term)
        if constant >= MIN_STEPS:
            at = f" at line {read.backward_site[1]}" if read.backward_site else ""
            return [Observation("DL404", f"{what}, and at {constant} of them the loss given to backward(){at} added "
                                         f"a term with no autograd history: that term changes the loss value and no "
                                         f"gradient; use the parameters themselves, not .data", True, read.sites)]
        return [Observation("DL404", f"{what}; the loss given to backward() added a term without history at "
                                     f"{constant} of them", False, read.sites, summary=True)]


def _upstream_parameters(node) -> Dict[int, object]:
    """Weak references to the leaf tensors (parameters) whose gradient flows through this autograd node."""
    found: Dict[int, object] = {}
    frontier = [node] if node is not None else []
    seen: Set[int] = set()
    while frontier and len(seen) < GRAPH_NODES:
        current = frontier.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        variable = getattr(current, "variable", None)
        if variable is not None:
            found[id(variable)] = weakref.ref(variable)
            continue
        frontier.extend(n for n, _ in current.next_functions if n is not None)
    return found


def _has_term_without_history(node) -> bool:
    """Whether the loss adds or subtracts a term that carries no autograd history (near its root)."""
    frontier = [node]
    seen = 0
    while frontier and seen < TERM_SEARCH_NODES:
        current = frontier.pop(0)
        seen += 1
        name = type(current).__name__
        if name not in ARITHMETIC_NODES:
            continue
        inputs = current.next_functions
        if name in ("AddBackward0", "SubBackward0") and any(n is None for n, _ in inputs):
            return True
        frontier.extend(n for n, _ in inputs if n is not None)
    return False
