"""Which of the static findings' lines ran (for NOT REACHED), at the lowest cost available.

Python 3.12+: sys.monitoring LINE events, only in the code objects that hold a target line (found by
a PY_START event that fires once per code object), each location disabled after its first event.
LINE events switched on for the whole process cost even when disabled location by location: a small
convolutional network's step took 40% longer under them on 3.12. Older
versions: sys.settrace, tracing lines only in the code objects that contain a target line, and
switched off entirely once every target line has run. A process under settrace runs all Python code
(torch's too) markedly slower, so the child pauses it for the middle of the run (after the first
steps, until the step budget: the loop body has run by then, evaluation code runs after) and relies
there on the lines its hooks see (`mark`).
"""

from __future__ import annotations

import dis
import os
import sys
import threading
from typing import Dict, Iterable, List, Set


class LineCoverage:
    def __init__(self, targets: Dict[str, Iterable[int]]):
        self.pending: Dict[str, Set[int]] = {}
        for path, lines in targets.items():
            self.pending[os.path.realpath(path)] = set(lines)
        self.reached: Dict[str, Set[int]] = {}
        self._by_filename: Dict[str, Set[int]] = {}  # code filename (as compiled) -> pending lines, or empty
        self._code_cache: Dict[object, object] = {}  # code object -> line tracer or None
        self._tool = None
        self._line_watched: List[object] = []  # code objects with local LINE events
        self._active = False
        self._paused = False
        self._handler = None

    def start(self) -> None:
        if not self.pending:
            return
        self._active = True
        if hasattr(sys, "monitoring"):
            self._start_monitoring()
        else:
            self._handler = self._call_handler()
            sys.settrace(self._handler)
            threading.settrace(self._handler)

    def pause(self) -> None:
        """Stop settrace for now (sys.monitoring costs nothing once each line has fired: it keeps going)."""
        if self._active and self._handler is not None and not self._paused:
            self._paused = True
            self._untrace()

    def resume(self, frame=None) -> None:
        """Trace again, including the frames already running from `frame` outwards."""
        if not (self._active and self._paused and any(self.pending.values())):
            return
        self._paused = False
        sys.settrace(self._handler)
        threading.settrace(self._handler)
        while frame is not None:
            if frame.f_trace is None and self._handler(frame, "call", None) is not None:
                frame.f_trace = self._on_line
            frame = frame.f_back

    def mark(self, path: str, line: int) -> None:
        """A line seen running by the instrumentation (path is a real path)."""
        lines = self.pending.get(path)
        if lines and line in lines:
            self._hit(path, lines, line)

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._tool is not None:
            monitoring = sys.monitoring
            monitoring.set_events(self._tool, 0)
            for code in self._line_watched:
                monitoring.set_local_events(self._tool, code, 0)
            self._line_watched = []
            monitoring.register_callback(self._tool, monitoring.events.PY_START, None)
            monitoring.register_callback(self._tool, monitoring.events.LINE, None)
            monitoring.free_tool_id(self._tool)
            self._tool = None
        elif not self._paused:
            self._untrace()

    def tracer(self):
        """The global trace function while lines are traced with settrace, else None."""
        return self._handler if self._active and not self._paused else None

    def _untrace(self) -> None:
        # Another tracer may be installed over this one (the loop exit after the step budget): keep it.
        if sys.gettrace() is self._handler:
            sys.settrace(None)
        threading.settrace(None)

    def reached_lines(self) -> Dict[str, List[int]]:
        return {path: sorted(lines) for path, lines in self.reached.items()}

    # -- common -------------------------------------------------------------------------------------

    def _pending_for(self, filename: str) -> Set[int]:
        lines = self._by_filename.get(filename)
        if lines is None:
            lines = self.pending.get(os.path.realpath(filename), set()) if not filename.startswith("<") else set()
            self._by_filename[filename] = lines
        return lines

    def _hit(self, filename: str, lines: Set[int], line: int) -> None:
        lines.discard(line)
        self.reached.setdefault(os.path.realpath(filename), set()).add(line)
        if not any(self.pending.values()):
            self.stop()

    # -- sys.monitoring (3.12+) ---------------------------------------------------------------------

    def _start_monitoring(self) -> None:
        monitoring = sys.monitoring
        for tool in range(5, 0, -1):
            try:
                monitoring.use_tool_id(tool, "dllint-coverage")
            except ValueError:
                continue
            self._tool = tool
            break
        if self._tool is None:
            self._active = False
            return
        monitoring.register_callback(self._tool, monitoring.events.PY_START, self._on_start_event)
        monitoring.register_callback(self._tool, monitoring.events.LINE, self._on_line_event)
        monitoring.set_events(self._tool, monitoring.events.PY_START)

    def _on_start_event(self, code, offset):
        lines = self._pending_for(code.co_filename)
        if lines and self._tool is not None and self._code_contains(code, lines):
            sys.monitoring.set_local_events(self._tool, code, sys.monitoring.events.LINE)
            self._line_watched.append(code)
        return sys.monitoring.DISABLE

    def _on_line_event(self, code, line):
        lines = self._pending_for(code.co_filename)
        if lines and line in lines:
            self._hit(code.co_filename, lines, line)
        return sys.monitoring.DISABLE

    # -- sys.settrace (before 3.12) -----------------------------------------------------------------

    def _call_handler(self):
        """The global trace function. It runs on every Python call in the process (torch's included), so it
        is one cached dictionary lookup per call; only code objects holding a target line get a line tracer."""
        tracers = self._code_cache
        tracer_of = tracers.get
        on_line = self._on_line

        def on_call(frame, event, arg):
            code = frame.f_code
            tracer = tracer_of(code, 0)
            if tracer == 0:
                lines = self._pending_for(code.co_filename)
                tracer = tracers[code] = on_line if lines and self._code_contains(code, lines) else None
            return tracer

        return on_call

    @staticmethod
    def _code_contains(code, lines: Set[int]) -> bool:
        own = {line for _, line in dis.findlinestarts(code) if line is not None}
        return bool(own & lines)

    def _on_line(self, frame, event, arg):
        if not self._active:
            return None
        if event == "line":
            filename = frame.f_code.co_filename
            lines = self._pending_for(filename)
            if not lines:
                return None
            if frame.f_lineno in lines:
                self._hit(filename, lines, frame.f_lineno)
        return self._on_line
