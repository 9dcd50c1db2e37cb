"""Ending the run: after N optimizer steps, and at the timeout.

After the N-th step the script is not cut off at once: the training DataLoader is exhausted, so the
epoch ends and the evaluation code that follows runs (each other loader yields a few batches), which
is where evaluation-mode bugs live. The next optimizer step, more than MAX_ITERATORS_AFTER_BUDGET new
loader iterations, or GRACE_SECONDS, stop the script with StopRun. The timeout raises StopRun from a
SIGALRM handler (a timer thread elsewhere); the parent kills the whole process group a little later
if the script does not come back from C code.
"""

from __future__ import annotations

import signal
import threading
import time
import _thread
from typing import Optional, Set

from dllint.runtime.probe import StopRun

GRACE_SECONDS = 10.0
BATCHES_AFTER_BUDGET = 2
MAX_ITERATORS_AFTER_BUDGET = 20


class RunControl:
    def __init__(self, probe, timeout: float):
        self.probe = probe
        self.torch = probe.torch
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.stop_reason: Optional[str] = None
        self.training_loaders: Set[int] = set()
        self._last_loader: Optional[int] = None
        self._iterators_after_budget = 0
        self._armed = False
        self._timer: Optional[threading.Timer] = None
        self._disarmed = False
        self._pending_reason = "timeout"

    def install(self) -> None:
        self.probe.on_budget_reached = self._budget_reached
        self.probe.on_step_started = self._step_started
        self._patch_data_loader()
        self._arm(self.timeout, "timeout")

    def disarm(self) -> None:
        """Called before the results are written: no StopRun may interrupt that."""
        self._disarmed = True
        if hasattr(signal, "setitimer"):
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
            except ValueError:
                pass
        if self._timer is not None:
            self._timer.cancel()

    # -- timers -------------------------------------------------------------------------------------

    def _arm(self, seconds: float, reason: str) -> None:
        remaining = self.deadline - time.monotonic()
        if seconds >= remaining:
            seconds, reason = remaining, "timeout"
        self._pending_reason = reason
        seconds = max(seconds, 0.01)
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, seconds)
        else:
            if self._timer is not None:
                self._timer.cancel()
            signal.signal(signal.SIGINT, self._on_alarm)
            self._timer = threading.Timer(seconds, _thread.interrupt_main)
            self._timer.daemon = True
            self._timer.start()

    def _on_alarm(self, signum, frame):
        if self._disarmed:
            return
        self.stop_reason = self._pending_reason
        if hasattr(signal, "setitimer"):
            # Again in a second, in case the script swallowed this one (bare except, __del__).
            signal.setitimer(signal.ITIMER_REAL, 1.0)
        raise StopRun(self._pending_reason)

    # -- step budget --------------------------------------------------------------------------------

    def _step_started(self) -> None:
        if self._last_loader is not None:
            self.training_loaders.add(self._last_loader)

    def _budget_reached(self) -> None:
        self._arm(GRACE_SECONDS, "grace")

    # -- DataLoader ---------------------------------------------------------------------------------

    def _patch_data_loader(self) -> None:
        from torch.utils.data import dataloader

        control = self
        original_iter = dataloader.DataLoader.__iter__
        original_next = dataloader._BaseDataLoaderIter.__next__

        def loader_iter(self_loader):
            if control.probe.budget_reached:
                control._new_iterator_after_budget()
                if id(self_loader) in control.training_loaders:
                    return iter(())  # the training epoch is over before it starts (and no workers start)
            iterator = original_iter(self_loader)
            try:
                iterator._dllint_loader = id(self_loader)
                iterator._dllint_after_budget = 0
            except AttributeError:
                pass
            return iterator

        def loader_next(self_iterator):
            loader = getattr(self_iterator, "_dllint_loader", None)
            if control.probe.budget_reached and loader is not None:
                if loader in control.training_loaders:
                    raise StopIteration
                self_iterator._dllint_after_budget += 1
                if self_iterator._dllint_after_budget > BATCHES_AFTER_BUDGET:
                    raise StopIteration
            batch = original_next(self_iterator)
            control._last_loader = loader
            return batch

        dataloader.DataLoader.__iter__ = loader_iter
        dataloader._BaseDataLoaderIter.__next__ = loader_next

    def _new_iterator_after_budget(self) -> None:
        self._iterators_after_budget += 1
        if self._iterators_after_budget > MAX_ITERATORS_AFTER_BUDGET:
            self.stop_reason = "steps"
            raise StopRun("steps")
