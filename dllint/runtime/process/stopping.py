"""Ending the run: after N optimizer steps, and at the timeout.

After the N-th step the script is not cut off at once: the training loops over DataLoaders end, so the
epoch ends and the evaluation code that follows runs, which is where evaluation-mode bugs live. A
training loop is told by where its iterator was created (the user's line that iterates the loader
before an optimizer step), not by the loader: an evaluation of the training set after training, from
another line, still gets batches (each such loop yields a few). The next optimizer step, more than MAX_ITERATORS_AFTER_BUDGET new
loader iterations, or GRACE_SECONDS, stop the script with StopRun. The timeout raises StopRun from a
SIGALRM handler (a timer thread elsewhere); the parent kills the whole process group a little later
if the script does not come back from C code.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import _thread
from typing import Any, Optional, Set, Tuple

from dllint.runtime.hooks import StopRun

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
        self.training_sites: Set[Tuple[Any, int]] = set()  # (code object, line) that iterate for training
        self._last_site: Optional[Tuple[Any, int]] = None
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
        if self._last_site is not None:
            self.training_sites.add(self._last_site)

    def _budget_reached(self) -> None:
        self._arm(GRACE_SECONDS, "grace")

    # -- DataLoader ---------------------------------------------------------------------------------

    def _patch_data_loader(self) -> None:
        from torch.utils.data import dataloader

        control = self
        original_iter = dataloader.DataLoader.__iter__
        original_next = dataloader._BaseDataLoaderIter.__next__

        def loader_iter(self_loader):
            site = control._iterating_site()
            if control.probe.budget_reached:
                control._new_iterator_after_budget()
                if site in control.training_sites:
                    return iter(())  # the training epoch is over before it starts (and no workers start)
            iterator = original_iter(self_loader)
            try:
                iterator._dllint_site = site
                iterator._dllint_after_budget = 0
            except AttributeError:
                pass
            return iterator

        def loader_next(self_iterator):
            site = getattr(self_iterator, "_dllint_site", None)
            if control.probe.budget_reached and hasattr(self_iterator, "_dllint_after_budget"):
                if site in control.training_sites:
                    raise StopIteration
                self_iterator._dllint_after_budget += 1
                if self_iterator._dllint_after_budget > BATCHES_AFTER_BUDGET:
                    raise StopIteration
            batch = original_next(self_iterator)
            control._last_site = site
            return batch

        dataloader.DataLoader.__iter__ = loader_iter
        dataloader._BaseDataLoaderIter.__next__ = loader_next

    def _iterating_site(self) -> Optional[Tuple[Any, int]]:
        """The user's line that asked for a loader iterator (through enumerate, tqdm, zip...)."""
        frame = self.probe.sources.innermost_user_frame(sys._getframe(2))
        return (frame.f_code, frame.f_lineno) if frame is not None else None

    def _new_iterator_after_budget(self) -> None:
        self._iterators_after_budget += 1
        if self._iterators_after_budget > MAX_ITERATORS_AFTER_BUDGET:
            self.stop_reason = "steps"
            raise StopRun("steps")
