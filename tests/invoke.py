"""The command line run in this process: the same `main` as `run_dllint`, without starting Python and
importing libcst again for every call, which keeps the suite fast. Process-level behaviour (a real pipe,
a terminal, tracebacks on stderr) is still tested through `run_dllint`."""

import contextlib
import os
import subprocess

from click.testing import CliRunner


@contextlib.contextmanager
def _working_directory(path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def invoke(*args, cwd, input=None, env=None):
    """Run `dllint ARGS` in `cwd`; returns a CompletedProcess like `run_dllint`."""
    from dllint.cli import main

    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2 mixes stderr into stdout unless told not to
    except TypeError:
        runner = CliRunner()
    with _working_directory(cwd):
        result = runner.invoke(main, list(args), input=input, env=env, catch_exceptions=False)
    completed = subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
    completed.stdout_bytes = result.stdout_bytes  # what was written, byte for byte (fixed source on stdin)
    return completed
