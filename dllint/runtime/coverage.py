"""Which of the static findings' lines ran (for NOT REACHED), at the lowest cost available.

Python 3.12+: sys.monitoring LINE events, each location disabled after its first event. Older
versions: sys.settrace, tracing lines only in the code objects that contain a target line, and
switched off entirely once every target line has run.
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
        self._code_cache: Dict[object, bool] = {}
        self._tool = None
        self._active = False

    def start(self) -> None:
        if not self.pending:
            return
        self._active = True
        if hasattr(sys, "monitoring"):
            self._start_monitoring()
        else:
            sys.settrace(self._on_call)
            threading.settrace(self._on_call)

    def stop(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._tool is not None:
            monitoring = sys.monitoring
            monitoring.set_events(self._tool, 0)
            monitoring.register_callback(self._tool, monitoring.events.LINE, None)
            monitoring.free_tool_id(self._tool)
            self._tool = None
        else:
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
        monitoring.register_callback(self._tool, monitoring.events.LINE, self._on_line_event)
        monitoring.set_events(self._tool, monitoring.events.LINE)

    def _on_line_event(self, code, line):
        lines = self._pending_for(code.co_filename)
        if lines and line in lines:
            self._hit(code.co_filename, lines, line)
        return sys.monitoring.DISABLE

    # -- sys.settrace (before 3.12) -----------------------------------------------------------------

    def _on_call(self, frame, event, arg):
        if not self._active:
            return None
        code = frame.f_code
        relevant = self._code_cache.get(code)
        if relevant is None:
            lines = self._pending_for(code.co_filename)
            relevant = bool(lines) and self._code_contains(code, lines)
            self._code_cache[code] = relevant
        return self._on_line if relevant else None

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
