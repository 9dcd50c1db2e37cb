"""The environment the script runs in: forced device, no torch.compile, single-process distributed
training, no network.

`--device cpu` makes torch.cuda.is_available() false and maps .cuda() / .to("cuda") to the CPU, so GPU
scripts can be checked on a laptop. torch.compile returns the model unchanged (the checks need the
eager model). init_process_group runs a world of one process with gloo; mp.spawn runs rank 0 in
process. Connections to anything but the local machine fail at once, naming the user's line.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, List

from dllint.runtime.observations import Observation


class NetworkBlockedError(ConnectionError):
    """Raised instead of connecting: dllint confirm runs scripts offline."""


class Sandbox:
    def __init__(self, probe, device: str):
        self.probe = probe
        self.torch = probe.torch
        self.device = device
        self.network_attempts: List[Observation] = []
        self.compile_sites: List[Any] = []

    def install(self) -> None:
        if self.device == "cpu":
            self._force_cpu()
        self._bypass_compile()
        self._single_process_distributed()
        self._block_network()

    # -- device -------------------------------------------------------------------------------------

    def _force_cpu(self) -> None:
        torch = self.torch
        cuda = torch.cuda
        cuda.is_available = lambda: False
        cuda.device_count = lambda: 0
        for name in ("synchronize", "empty_cache", "set_device", "reset_peak_memory_stats", "ipc_collect"):
            if hasattr(cuda, name):
                setattr(cuda, name, _ignoring(name))

        def tensor_cuda(self_tensor, *args, **kwargs):
            return self_tensor

        def module_cuda(self_module, device=None):
            return self_module

        torch.Tensor.cuda = tensor_cuda
        torch.nn.Module.cuda = module_cuda
        for owner in (torch.Tensor, torch.nn.Module):
            owner.to = _cpu_only_to(owner.to, torch)

    # -- torch.compile ------------------------------------------------------------------------------

    def _bypass_compile(self) -> None:
        torch = self.torch
        sandbox = self

        def compile(model=None, *args, **kwargs):
            site = sandbox.probe.user_site(depth=2)
            if site is not None and site not in sandbox.compile_sites:
                sandbox.compile_sites.append(site)
            if model is None:
                return lambda function: function
            return model

        if hasattr(torch, "compile"):
            torch.compile = compile
        if hasattr(torch.nn.Module, "compile"):
            torch.nn.Module.compile = lambda self_module, *args, **kwargs: None

    # -- distributed --------------------------------------------------------------------------------

    def _single_process_distributed(self) -> None:
        torch = self.torch
        try:
            import torch.distributed as dist
        except ImportError:
            return
        if not dist.is_available():
            return
        original_init = dist.init_process_group
        use_gloo = self.device == "cpu" or not torch.cuda.is_available()

        def init_process_group(backend=None, init_method=None, *args, **kwargs):
            if use_gloo:
                backend = "gloo"
            kwargs["world_size"] = 1
            kwargs["rank"] = 0
            kwargs.pop("store", None)
            if init_method is not None and not str(init_method).startswith("env://"):
                init_method = None
            return original_init(backend=backend, init_method=init_method, **kwargs)

        dist.init_process_group = init_process_group
        parallel = torch.nn.parallel
        original_ddp_init = parallel.DistributedDataParallel.__init__

        def ddp_init(self_ddp, module, device_ids=None, output_device=None, *args, **kwargs):
            on_cpu = all(p.device.type == "cpu" for p in module.parameters())
            if on_cpu:
                device_ids, output_device = None, None
            original_ddp_init(self_ddp, module, device_ids, output_device, *args, **kwargs)

        parallel.DistributedDataParallel.__init__ = ddp_init
        import torch.multiprocessing as torch_mp

        def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
            fn(0, *args)
            return None

        torch_mp.spawn = spawn

    # -- network ------------------------------------------------------------------------------------

    def _block_network(self) -> None:
        sandbox = self
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        original_getaddrinfo = socket.getaddrinfo

        def connect(self_socket, address):
            sandbox._check(self_socket.family, address)
            return original_connect(self_socket, address)

        def connect_ex(self_socket, address):
            sandbox._check(self_socket.family, address)
            return original_connect_ex(self_socket, address)

        def getaddrinfo(host, *args, **kwargs):
            sandbox._check(socket.AF_INET, (host, args[0] if args else None))
            return original_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = connect
        socket.socket.connect_ex = connect_ex
        socket.getaddrinfo = getaddrinfo

    def _check(self, family, address) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or not address:
            return
        host = address[0]
        if _is_local(host):
            return
        sites = self.probe.user_sites(depth=3)
        where = f" at {_short(sites[0])}" if sites else ""
        target = f"{host}:{address[1]}" if len(address) > 1 and address[1] is not None else str(host)
        if len(self.network_attempts) < 3:
            self.network_attempts.append(Observation(
                "RT901", f"the script tried to reach {target}; dllint confirm runs scripts offline, so use local "
                         f"files or synthetic data for the check", True, sites, severity="error"))
        raise NetworkBlockedError(f"dllint confirm blocks network access: {target} was requested{where}; "
                                  f"point the script at local or synthetic data")

    # -- results ------------------------------------------------------------------------------------

    def notes(self) -> List[str]:
        return [f"torch.compile was bypassed at {_short(site)}: the uncompiled model was checked"
                for site in self.compile_sites]


def _ignoring(name: str):
    # One function per name: torch._dynamo indexes torch functions by identity and rejects duplicates.
    def ignore(*args, **kwargs):
        return None

    ignore.__name__ = name
    return ignore


def _is_local(host) -> bool:
    if host is None or host in ("", "localhost", "localhost.localdomain"):
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host == socket.gethostname():
        return True
    try:
        address = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _short(site) -> str:
    import os

    path, line = site[0], site[1]
    relative = os.path.relpath(path)
    return f"{path if relative.startswith('..') else relative}:{line}"


def _cpu_only_to(original, torch):
    def to(self_object, *args, **kwargs):
        if args:
            args = tuple(_cpu_device(arg, torch) if i == 0 or not isinstance(arg, int) else arg
                         for i, arg in enumerate(args))
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"], torch)
        return original(self_object, *args, **kwargs)

    to.__wrapped__ = original
    return to


def _cpu_device(value: Any, torch) -> Any:
    if isinstance(value, str) and value.split(":")[0] == "cuda":
        return "cpu"
    if isinstance(value, torch.device) and value.type == "cuda":
        return torch.device("cpu")
    if isinstance(value, int) and not isinstance(value, bool):
        return "cpu"  # .to(0) means cuda:0
    return value
