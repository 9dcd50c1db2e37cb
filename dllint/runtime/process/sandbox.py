"""The environment the script runs in: forced device, no torch.compile, single-process distributed
training, no network.

`--device cpu` makes torch.cuda.is_available() false and maps .cuda() / .to("cuda") to the CPU, so GPU
scripts can be checked on a laptop. torch.compile returns the model unchanged (the checks need the
eager model). init_process_group runs a world of one process with gloo; mp.spawn runs rank 0 in
process. Connections to anything but the local machine fail at once, naming the user's line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from typing import Any, List

from dllint.runtime.observations import Observation


# Subprocesses see these proxies: a port that nothing listens on, so their connections fail at once.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "FTP_PROXY", "ALL_PROXY")
CLOSED_PORT = 9  # discard


class NetworkBlockedError(ConnectionError):
    """Raised instead of connecting: dllint confirm runs scripts offline."""


class Sandbox:
    def __init__(self, probe, device: str):
        self.probe = probe
        self.torch = probe.torch
        self.device = device
        self.network_attempts: List[Observation] = []
        self.compile_sites: List[Any] = []
        self._checking = threading.local()

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
        """Every Python route out: connect/connect_ex and sendto/sendmsg (UDP) on socket.socket and on the
        raw _socket.socket beneath it, and the name lookups; and the programs the script starts."""
        import _socket

        sandbox = self
        guarded = {}

        def guard_method(owner, name, address_of):
            original = getattr(owner, name)

            def method(self_socket, *args):
                sandbox._check(self_socket.family, address_of(args))
                return original(self_socket, *args)

            method.__name__ = name
            guarded[name] = method
            return method

        routes = {"connect": lambda args: args[0] if args else None,
                  "connect_ex": lambda args: args[0] if args else None,
                  "sendto": lambda args: args[-1] if len(args) >= 2 else None,
                  "sendmsg": lambda args: args[3] if len(args) >= 4 else None}

        class GuardedSocket(_socket.socket):
            __slots__ = ()

        for name, address_of in routes.items():
            setattr(socket.socket, name, guard_method(socket.socket, name, address_of))
            setattr(GuardedSocket, name, guard_method(_socket.socket, name, address_of))
        # Code that builds the C socket itself (`_socket.socket(...)`) gets the guarded subclass.
        _socket.socket = _socket.SocketType = GuardedSocket

        def guard_lookup(module, name, host_of):
            original = getattr(module, name, None)
            if original is None:
                return

            def lookup(*args, **kwargs):
                host = host_of(args, kwargs)
                sandbox._check(socket.AF_INET, (host, None))
                return original(*args, **kwargs)

            lookup.__name__ = name
            setattr(module, name, lookup)

        first = lambda args, kwargs: args[0] if args else kwargs.get("host")  # noqa: E731
        for module in (socket, _socket):
            for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
                guard_lookup(module, name, first)
        self._proxy_subprocesses()

    def _proxy_subprocesses(self) -> None:
        """Programs the script starts reach the network through a proxy that is a closed local port.
        (The script's own process keeps its environment: urllib and requests in it go through the guards
        above, which name the script's line.)"""
        import subprocess

        proxies = {variable: f"http://127.0.0.1:{CLOSED_PORT}" for variable in PROXY_VARIABLES}
        proxies.update({"no_proxy": "localhost,127.0.0.1,::1", "NO_PROXY": "localhost,127.0.0.1,::1"})
        original_init = subprocess.Popen.__init__

        def popen_init(self_popen, args, *rest, **kwargs):
            if len(rest) < 10:  # env is the tenth parameter after args; passed by keyword in practice
                kwargs["env"] = {**(kwargs.get("env") or os.environ), **proxies}
            return original_init(self_popen, args, *rest, **kwargs)

        subprocess.Popen.__init__ = popen_init
        original_system = os.system

        def system(command):
            saved = {variable: os.environ.get(variable) for variable in proxies}
            os.environ.update(proxies)
            try:
                return original_system(command)
            finally:
                for variable, value in saved.items():
                    if value is None:
                        os.environ.pop(variable, None)
                    else:
                        os.environ[variable] = value

        os.system = system

    def _check(self, family, address) -> None:
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or not address:
            return
        if getattr(self._checking, "active", False):
            return  # a lookup made by a guarded call already checked
        self._checking.active = True
        try:
            self._refuse_unless_local(address)
        finally:
            self._checking.active = False

    def _refuse_unless_local(self, address) -> None:
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
