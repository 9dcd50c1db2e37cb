"""Filesystem tricks: FIFOs, devices, unreadable directories. Nothing hangs, reads forever or is
silently skipped."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import run_dllint

BUGGY = "import torch\nfor x, y in loader:\n    loss = model(x).sum()\n    loss.backward()\n    optimizer.step()\n"

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
def test_a_fifo_named_like_python_in_a_walked_directory_is_skipped(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "train.py").write_text(BUGGY)
    result = run_dllint(str(tmp_path), "--no-cache")  # run_dllint's timeout fails a hang
    assert result.returncode == 1
    assert "train.py:5:5: DL101" in result.stdout
    assert "(1 file checked)" in result.stderr


@needs_fifo
def test_a_fifo_named_explicitly_is_reported_not_passed(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    result = run_dllint(str(tmp_path / "pipe.py"), "--no-cache")
    assert result.returncode == 1
    assert "DL000 [parse-error] cannot read file: not a regular file (a FIFO)" in result.stdout
    assert "All checks passed" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_link_to_dev_zero_is_neither_read_nor_hangs(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zeros.py")
    os.symlink("/dev/null", tmp_path / "empty.ipynb")
    (tmp_path / "train.py").write_text(BUGGY)
    walked = run_dllint(str(tmp_path), "--no-cache")
    assert "(1 file checked)" in walked.stderr and "DL101" in walked.stdout
    named = run_dllint(str(tmp_path / "zeros.py"), str(tmp_path / "empty.ipynb"), "--no-cache")
    assert named.returncode == 1
    assert named.stdout.count("cannot read file: not a regular file (a device)") == 2


def test_reading_stops_at_the_limit(tmp_path):
    from dllint.engine import MAX_ANALYSED_BYTES, read_bounded

    big = tmp_path / "big.py"
    big.write_bytes(b"#" * (MAX_ANALYSED_BYTES * 3))
    assert len(read_bounded(str(big), MAX_ANALYSED_BYTES)) == MAX_ANALYSED_BYTES + 1
    result = run_dllint(str(big), "--no-cache")
    assert "big.py is larger than 2 MB: skipped" in result.stderr


def _as_unprivileged_user(*args, cwd):
    """Run dllint's command line as `nobody` (as root, permissions are not enforced at all): in a
    forked child that drops its privileges, since the interpreter may sit where `nobody` cannot go."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 3
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                # Everything the run imports, imported while the interpreter's files can still be read.
                import dllint.cache, dllint.cache_folder, dllint.index.catalogue, dllint.index.project_context  # noqa
                import dllint.index.summaries, dllint.notebook, dllint.pipeline, dllint.runner  # noqa
                from dllint import registry
                from dllint.cli import main
                from dllint.output import FORMAT_NAMES, _load
                import concurrent.futures.process  # noqa: F401 - the runner imports it when it needs workers

                registry.all_rules()
                for name in FORMAT_NAMES:
                    _load(name)
                os.setgid(65534)
                os.setuid(65534)
                os.chdir(cwd)

                main(list(args), prog_name="dllint")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 2
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, os.waitstatus_to_exitcode(status), out.read().decode(),
                                           err.read().decode())


@pytest.fixture
def shared_directory():
    """A directory the unprivileged user can read, with an unreadable subdirectory."""
    directory = tempfile.mkdtemp(prefix="dllint-perm-")
    os.chmod(directory, 0o755)
    try:
        yield directory
    finally:
        for path, subdirs, _ in os.walk(directory):
            for name in subdirs:
                os.chmod(os.path.join(path, name), 0o755)
        shutil.rmtree(directory, ignore_errors=True)


def _unreadable_setup(directory):
    with open(os.path.join(directory, "train.py"), "w") as handle:
        handle.write(BUGGY)
    locked = os.path.join(directory, "locked")
    os.mkdir(locked)
    with open(os.path.join(locked, "hidden.py"), "w") as handle:
        handle.write(BUGGY)
    os.chmod(locked, 0o000)
    return locked


def _permissions_apply():
    return os.name == "posix" and hasattr(os, "fork")


@pytest.mark.skipif(not _permissions_apply(), reason="no POSIX permissions")
def test_an_unreadable_subdirectory_is_reported_with_a_warning(shared_directory):
    _unreadable_setup(shared_directory)
    run = _as_unprivileged_user if os.geteuid() == 0 else \
        (lambda *args, cwd: run_dllint(*args, cwd=cwd))
    result = run(".", "--no-cache", cwd=shared_directory)
    assert "Traceback" not in result.stderr, result.stderr
    assert "dllint: warning: ./locked: cannot read directory (Permission denied); its files were not checked" \
        in result.stderr, result.stderr
    assert "train.py:5:5: DL101" in result.stdout


@pytest.mark.skipif(not _permissions_apply(), reason="no POSIX permissions")
def test_a_file_in_an_unreadable_directory_is_reported_as_unreadable(shared_directory):
    _unreadable_setup(shared_directory)
    run = _as_unprivileged_user if os.geteuid() == 0 else \
        (lambda *args, cwd: run_dllint(*args, cwd=cwd))
    result = run("locked/hidden.py", "--no-cache", "--format", "json", cwd=shared_directory)
    assert "no such file" not in result.stderr, result.stderr
    findings = json.loads(result.stdout)
    assert [(f["code"], f["message"]) for f in findings] == [("DL000", "cannot read file: Permission denied")]
    assert result.returncode == 1
    # Whether a file exists in a directory that cannot be searched is unknown: it is unreadable.
    unknown = run("locked/absent.py", "--no-cache", cwd=shared_directory)
    assert unknown.returncode == 1 and "cannot read file: Permission denied" in unknown.stdout


@pytest.mark.parametrize("output_format", ["text", "json", "jsonl", "sarif", "github", "gitlab", "junit"])
def test_file_and_directory_names_that_are_not_utf8(tmp_path, output_format):
    """Names are bytes on POSIX: one that is not valid UTF-8 anywhere in the tree is linted and shown,
    in every format, with the cache on (its keys hash the names)."""
    try:
        os.mkdir(os.fsencode(tmp_path) + b"/data\xfe")
        with open(os.fsencode(tmp_path) + b"/data\xfe/train\xff.py", "wb") as handle:
            handle.write(BUGGY.encode())
    except (OSError, UnicodeError):
        pytest.skip("this filesystem refuses names that are not UTF-8")
    for _ in range(2):  # the second run answers from the cache
        result = subprocess.run([sys.executable, "-m", "dllint", ".", "--format", output_format], cwd=tmp_path,
                                capture_output=True, timeout=120)
        assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")
        assert result.returncode == 1
        assert b"DL101" in result.stdout
    if output_format == "text":
        # The name's own bytes, as `ls` would show them.
        assert result.stdout.startswith(b"data\xfe/train\xff.py:5:5: DL101")


def test_stdin_named_with_a_name_that_is_not_utf8(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dllint", "-", "--stdin-filename", os.fsdecode(b"buffer\xff.py")],
                            cwd=tmp_path, input=BUGGY.encode(), capture_output=True, timeout=120)
    assert b"Traceback" not in result.stderr and result.returncode == 1
    assert result.stdout.startswith(b"buffer\xff.py:5:5: DL101")
