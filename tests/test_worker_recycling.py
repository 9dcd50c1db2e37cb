"""Worker processes: one that recycles hands its run to a fresh process without changing the
output, and a worker's failure reaches the caller."""

import glob
import multiprocessing
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT

PACKAGES = sorted(glob.glob(os.path.join(FIXTURES, "pkg_*")))

fork_only = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                               reason="workers are recycled only where they are forked")


def _items():
    from dllint.discovery import discover
    from dllint.engine import display_path, load_source

    paths, roots = discover(PACKAGES, [])
    return [load_source(p, display_path(p)) for p in paths], roots


def _lint(jobs):
    from dllint.registry import all_rules
    from dllint.runner import lint_items

    items, roots = _items()
    return lint_items(items, [rule.code for rule in all_rules()], roots, jobs=jobs)


class _CountingContext:
    """The runner's multiprocessing context, counting the worker processes it starts."""

    def __init__(self, context):
        self.context = context
        self.started = []

    def __getattr__(self, name):
        return getattr(self.context, name)

    def Process(self, *args, **kwargs):
        self.started.append(kwargs["args"][0])  # the run the process lints
        return self.context.Process(*args, **kwargs)


@fork_only
def test_a_worker_recycled_after_every_chunk_gives_the_output_of_one_that_never_is(monkeypatch):
    from dllint import engine, runner

    monkeypatch.setattr(engine, "CHUNK_FILES", 3)
    expected = _lint(jobs=1)
    assert expected.findings  # the packages hold cross-file bugs: the comparison means something
    counting = _CountingContext(runner._context())
    monkeypatch.setattr(runner, "_context", lambda: counting)
    monkeypatch.setattr(runner, "RECYCLE_AFTER_BYTES", -(1 << 40))  # any memory is too much
    recycled = _lint(jobs=2)
    assert recycled.findings == expected.findings
    assert recycled.files_analysed == expected.files_analysed
    chunk_count = len(engine.chunks(recycled.catalogue))
    # A process per chunk: each stops after its first chunk while chunks are left (a fresh one can
    # find that the other run's worker took the last).
    assert chunk_count <= len(counting.started) <= chunk_count + 2
    assert sorted(set(counting.started)) == [0, 1]


@fork_only
def test_a_worker_that_holds_little_is_not_recycled(monkeypatch):
    from dllint import engine, runner

    monkeypatch.setattr(engine, "CHUNK_FILES", 3)
    counting = _CountingContext(runner._context())
    monkeypatch.setattr(runner, "_context", lambda: counting)
    _lint(jobs=2)
    assert sorted(counting.started) == [0, 1]


def test_memory_left_behind_discounts_what_the_held_facts_need(monkeypatch):
    from dllint import runner

    class Store:
        def held_chars(self):
            return 1_000_000

    monkeypatch.setitem(runner._WORKER, "start_resident", 100_000_000)
    monkeypatch.setattr(runner, "_resident_bytes", lambda: 300_000_000)
    assert runner._memory_left_behind(Store()) == 300_000_000 - 100_000_000 - 50 * 1_000_000
    monkeypatch.setattr(runner, "_resident_bytes", lambda: None)  # not readable here: never recycle
    assert runner._memory_left_behind(Store()) == 0


def _fail_in_worker(catalogue, store, indices, codes):
    raise ValueError("broken analysis of chunk %s" % list(indices)[:1])


def test_an_error_in_a_worker_reaches_the_caller_with_its_traceback(monkeypatch):
    from dllint import runner

    monkeypatch.setattr(runner, "lint_chunk", _fail_in_worker)
    with pytest.raises(ValueError, match="broken analysis of chunk") as raised:
        _lint(jobs=2)
    # The worker's own traceback comes along, as the cause.
    assert "_fail_in_worker" in str(raised.value.__cause__)


@fork_only
def test_a_worker_that_dies_is_reported_not_waited_for(monkeypatch):
    from dllint import runner

    def die(catalogue, store, indices, codes):
        os._exit(3)

    monkeypatch.setattr(runner, "lint_chunk", die)
    with pytest.raises(runner.WorkerError, match="exit code 3"):
        _lint(jobs=2)


@fork_only
@pytest.mark.parametrize("how, told", [("os._exit(3)", "exit code 3"),
                                       ("os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9")])
def test_the_command_line_reports_a_worker_killed_in_one_line(how, told):
    """A worker the system kills (out of memory) is an error of the run: one line and exit status 2."""
    probe = ("import os, signal, sys\nfrom dllint import runner\n"
             f"def die(*arguments):\n    {how}\n"
             "runner.lint_chunk = die\nfrom dllint.cli import main\n"
             f"sys.argv = ['dllint', '--no-cache', '--jobs', '2', *{PACKAGES!r}]\nmain()\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 2 and run.stdout == "", (run.stdout, run.stderr)
    assert run.stderr.startswith(f"dllint: error: a worker process ended unexpectedly ({told}")
    assert run.stderr.count("\n") == 1, run.stderr
