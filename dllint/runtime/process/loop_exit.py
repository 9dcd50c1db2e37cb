"""Leaving the training loops once the step budget is reached, so that the code after them still runs.

At the step that reaches the budget, every user frame on the stack whose running line is inside a loop
is watched with a line tracer: the loop's current iteration finishes (the rest of the body, a second
optimizer's step, logging), and when the loop is about to start its next iteration (a line event that
jumps back inside it, the header of a `for` or the top of a `while True:`) the frame jumps to the first
statement after it (setting `frame.f_lineno`, as debuggers do). Inner loops are left first, so the rest
of the epoch's body (its evaluation) runs before the epoch loop is left; loops that did not hold the
step (an evaluation loop in that body) run normally. A loop with no statement after it in its function
cannot be left this way; the next optimizer step then stops the script.
"""

from __future__ import annotations

import ast
import linecache
import sys
from typing import Callable, Dict, Optional, Set, Tuple

Loop = Tuple[int, int]  # (first line, last line) of a for/while statement


class LoopExit:
    def __init__(self, sources, global_tracer: Callable[[], Optional[Callable]]):
        """`sources`: which files are the user's; `global_tracer`: the trace function to restore when done
        (line coverage's, while it still needs one)."""
        self.sources = sources
        self.global_tracer = global_tracer
        self.frames: Dict[object, "_WatchedFrame"] = {}
        self.jumps = 0
        self._installed = False

    def arm(self, frame) -> int:
        """Watch every user frame from `frame` outwards; returns how many loops will be left."""
        armed = 0
        while frame is not None:
            if self.sources.real_path(frame.f_code.co_filename) is not None and frame not in self.frames:
                watched = _WatchedFrame.of(frame, self)
                if watched is not None:
                    self.frames[frame] = watched
                    armed += len(watched.exits)
            frame = frame.f_back
        if self.frames and not self._installed:
            self._installed = True
            sys.settrace(self._on_call)
        return armed

    def _on_call(self, frame, event, arg):
        tracer = self.global_tracer()
        return tracer(frame, event, arg) if tracer is not None else None

    def done(self, frame) -> None:
        self.frames.pop(frame, None)
        if not self.frames and self._installed:
            self._installed = False
            sys.settrace(self.global_tracer())


class _WatchedFrame:
    def __init__(self, frame, owner: LoopExit, loops: Dict[Loop, Set[int]], exits: Dict[Loop, int]):
        self.owner = owner
        # Every loop of the function and the lines where its iterations start, to tell which loop a
        # jump back belongs to (a multi-line statement also steps back, to its first line).
        self.loops = loops
        self.exits = exits  # the loops holding the running line -> the line to jump to
        self.last_line = frame.f_lineno
        self.inner = frame.f_trace  # line coverage's tracer, kept running
        frame.f_trace = self.trace
        frame.f_trace_lines = True

    @classmethod
    def of(cls, frame, owner: LoopExit) -> Optional["_WatchedFrame"]:
        found = _loops_around(frame.f_code, frame.f_lineno)
        if found is None:
            return None
        loops, exits = found
        return cls(frame, owner, loops, exits) if exits else None

    def trace(self, frame, event, arg):
        inner = self.inner(frame, event, arg) if self.inner is not None else None
        if event == "return":
            self.owner.done(frame)
            return None
        if event == "line":
            line = frame.f_lineno
            restarted = self._restarted_loop(line)
            self.last_line = line
            if restarted is not None:
                target = self.exits.pop(restarted)
                try:
                    frame.f_lineno = target
                    self.owner.jumps += 1
                    self.last_line = target
                    # Loops left together with this one (it was the last statement of their body).
                    for loop in [loop for loop in self.exits if not loop[0] <= target <= loop[1]]:
                        del self.exits[loop]
                except ValueError:
                    self.exits.clear()  # a jump Python refuses (out of a finally block): the next step stops
                if not self.exits:
                    frame.f_trace = self.inner
                    self.owner.done(frame)
                    return self.inner
        self.inner = inner if inner is not None else self.inner
        return self.trace

    def _restarted_loop(self, line: int) -> Optional[Loop]:
        """The watched loop whose next iteration starts at `line` (a jump back, or its header again)."""
        if line > self.last_line:
            return None
        inside = [loop for loop in self.loops if loop[0] <= line <= loop[1] and loop[0] <= self.last_line <= loop[1]]
        if not inside:
            return None
        innermost = max(inside, key=lambda loop: loop[0])
        return innermost if innermost in self.exits and line in self.loops[innermost] else None


_TREES: Dict[str, Optional[ast.AST]] = {}


def _loops_around(code, line: int) -> Optional[Tuple[Dict[Loop, Set[int]], Dict[Loop, int]]]:
    """All loops of the function that `code` runs with the lines where their iterations start, and for the
    loops around `line` the line to leave them to: the next statement, or the enclosing loop's when the
    loop ends its body."""
    tree = _tree(code.co_filename)
    if tree is None:
        return None
    body = _function_body(tree, code)
    if body is None:
        return None
    loops: Dict[Loop, Set[int]] = {}
    exits: Dict[Loop, int] = {}

    def visit(statements, following: Optional[int]) -> None:
        for position, statement in enumerate(statements):
            after = statements[position + 1].lineno if position + 1 < len(statements) else following
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(statement, (ast.For, ast.AsyncFor, ast.While)):
                loop = (statement.lineno, statement.end_lineno or statement.lineno)
                # A `for` starts each iteration on its header; `while True:` on its first statement.
                starts = {statement.lineno}
                if isinstance(statement, ast.While) and statement.body:
                    starts.add(statement.body[0].lineno)
                loops[loop] = starts
                if loop[0] <= line <= loop[1] and after is not None and not statement.orelse:
                    exits[loop] = after
                visit(statement.body, after if not statement.orelse else None)
                visit(statement.orelse, after)
                continue
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(statement, field, None) or [], after)
            for handler in getattr(statement, "handlers", None) or []:
                visit(handler.body, after)
            for case in getattr(statement, "cases", None) or []:
                visit(case.body, after)

    visit(body, None)
    return loops, exits


def _tree(filename: str) -> Optional[ast.AST]:
    if filename not in _TREES:
        try:
            _TREES[filename] = ast.parse("".join(linecache.getlines(filename)) or "\n")
        except (SyntaxError, ValueError):
            _TREES[filename] = None
    return _TREES[filename]


def _function_body(tree: ast.AST, code) -> Optional[list]:
    if code.co_name == "<module>":
        return tree.body
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            if first <= code.co_firstlineno <= node.lineno:
                return node.body
    return None
