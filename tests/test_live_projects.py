"""What a long-lived process keeps of its projects between lints (dllint/index/live.py): a walk is
reused only while no folder it read (or ignore file git reads) has changed, and a catalogue built
from a memo of earlier ones equals a fresh one after every kind of change."""

import os
import shutil
import subprocess
import time

import pytest

from dllint.discovery import DEFAULT_EXCLUDES, discover_files
from dllint.engine import load_source
from dllint.index.catalogue import CatalogueMemo, SavedImports, build_catalogue, path_key
from dllint.index.live import LiveProjects
from dllint.index.project_context import with_project
from tests.conftest import FIXTURES
from tests.test_project_context import LOGITS_MODELS, MODELS, PACKAGES, TRAIN


def _date_back(root, seconds=60):
    """Every folder dated back, as folders are a while after they last changed (one changed within
    the last two seconds is walked again each time: a second change could keep its time)."""
    for folder, _, _ in os.walk(root):
        modified = os.stat(folder).st_mtime_ns
        os.utime(folder, ns=(modified - seconds * 10**9, modified - seconds * 10**9))


def _walk(live, root, respect_gitignore=False):
    return live.discover(str(root), DEFAULT_EXCLUDES, None, respect_gitignore)


def _fresh(root, respect_gitignore=False):
    return discover_files([str(root)], DEFAULT_EXCLUDES, None, respect_gitignore).files


def test_a_walk_is_reused_until_a_folder_it_read_changes(tmp_path):
    shutil.copytree(os.path.join(FIXTURES, "pkg_mode_gan_and_sampler"), tmp_path / "gan")
    _date_back(tmp_path)
    live = LiveProjects()
    first = _walk(live, tmp_path)
    assert first.files == _fresh(tmp_path) and len(first.files) >= 3
    assert _walk(live, tmp_path) is first  # nothing changed: not walked again
    (tmp_path / "gan" / "tests" / "test_sampler.py").write_text("import torch\n")  # a file created deep down
    created = _walk(live, tmp_path)
    assert created.files == _fresh(tmp_path) and created.files != first.files
    _date_back(tmp_path)
    assert _walk(live, tmp_path).files == _fresh(tmp_path)
    shutil.rmtree(tmp_path / "gan" / "tests")  # a folder deleted whole
    assert _walk(live, tmp_path).files == _fresh(tmp_path) == [str(tmp_path / "gan" / name)
                                                                for name in ("components.py", "gan.py")]
    (tmp_path / "gan" / "components.py").write_text("import torch\n")  # content only: the walk holds
    _date_back(tmp_path)
    kept = _walk(live, tmp_path)
    assert _walk(live, tmp_path) is kept


def test_a_folder_changed_within_the_clock_tick_of_the_walk_is_walked_again(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    live = LiveProjects()
    first = _walk(live, tmp_path)
    (tmp_path / "models.py").write_text(MODELS)
    # Within the same tick the folder's time may not have moved: the first walk was not kept.
    os.utime(tmp_path, ns=(os.stat(tmp_path).st_atime_ns, os.stat(tmp_path).st_mtime_ns))
    assert _walk(live, tmp_path) is not first
    assert _walk(live, tmp_path).files == _fresh(tmp_path) == [str(tmp_path / "models.py"), str(tmp_path / "train.py")]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_with_respect_gitignore_an_edited_gitignore_is_a_change(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "scratch.py").write_text(MODELS)
    (tmp_path / ".gitignore").write_text("*.log\n")
    old = time.time_ns() - 60 * 10**9
    for folder, _, names in os.walk(tmp_path):  # the repository's own files as old as the rest
        for path in (folder, *(os.path.join(folder, name) for name in names)):
            os.utime(path, ns=(old, old))
    live = LiveProjects()
    first = _walk(live, tmp_path, respect_gitignore=True)
    assert [os.path.basename(f) for f in first.files] == ["scratch.py", "train.py"]
    assert _walk(live, tmp_path, respect_gitignore=True) is first
    (tmp_path / ".gitignore").write_text("*.log\nscratch.py\n")  # its folder's time does not change
    os.utime(tmp_path / ".gitignore", ns=(old + 1, old + 1))
    assert _walk(live, tmp_path, respect_gitignore=True).files == _fresh(tmp_path, True) == [str(tmp_path / "train.py")]


def _catalogue_view(catalogue):
    paths = [path_key(item.path) for item in catalogue.items]
    return ({paths[n]: catalogue.module_names[n] for n in catalogue.analysed},
            {paths[target]: sorted(paths[i] for i in importers) for target, importers in catalogue.importers.items()},
            sorted(paths[n] for n in catalogue.linted))


def test_a_catalogue_built_with_a_memo_equals_a_fresh_one_after_every_change(tmp_path, monkeypatch):
    """Over every fixture package: imports edited, a file that stops and starts mentioning torch, a
    module created and deleted; the memo carries over from one catalogue to the next, and so do the
    imports an earlier run resolved and saved (a command-line run's cache)."""
    import dllint.index.catalogue as catalogue_module

    project = tmp_path / "project"
    for package in PACKAGES:
        shutil.copytree(package, project / os.path.basename(package))
    (project / "pyproject.toml").write_text("")
    named = str(project / "pkg_loss_keyword_spotting" / "train.py")
    buffers = {}
    memo = CatalogueMemo()
    resolved = []
    resolve = catalogue_module._import_targets
    monkeypatch.setattr(catalogue_module, "_import_targets", lambda *args: resolved.append(args[1]) or resolve(*args))

    def compare(step):
        item = load_source(named, named, buffers.get(named, open(named).read()).encode())
        items, roots = with_project([item], [named], buffers=buffers)
        ordered = sorted(items, key=lambda i: path_key(i.path))
        fresh_catalogue = build_catalogue(ordered, roots)
        fresh = _catalogue_view(fresh_catalogue)
        assert _catalogue_view(build_catalogue(ordered, roots, memo)) == fresh, step
        resolved.clear()
        saved = build_catalogue(ordered, roots, saved=SavedImports(str(tmp_path / "cache"), roots))
        assert saved.importers == fresh_catalogue.importers, step
        return fresh

    views = [compare("first")]
    assert len(resolved) > 5
    assert compare("again") == views[0]
    assert resolved == []  # nothing changed: every file's imports came from the saved ones
    train = open(named).read()
    buffers[named] = train.replace("from models import KeywordSpotter", "from data import KEYWORDS")
    views.append(compare("an import edited"))
    assert len(resolved) == 1  # only the edited file's imports were resolved again
    data = str(project / "pkg_loss_keyword_spotting" / "data.py")
    buffers[data] = "KEYWORDS = ['yes', 'no']\n"
    views.append(compare("a file no longer analysed"))
    del buffers[data]
    buffers[named] = train
    views.append(compare("both back"))
    extra = project / "pkg_loss_keyword_spotting" / "heads.py"
    extra.write_text(LOGITS_MODELS + "\nfrom models import KeywordSpotter\n")
    views.append(compare("a module created"))
    buffers[named] = train.replace("from models import KeywordSpotter", "from heads import Net")
    views.append(compare("the new module imported"))
    extra.unlink()
    views.append(compare("the module deleted"))
    assert len({repr(v) for v in views}) >= 5  # the steps changed the catalogue


def test_a_long_lived_process_lints_without_worker_processes(tmp_path, monkeypatch):
    """The language server lints on a thread, and a process forked from one with threads can hang on
    a lock another thread held: with `live`, even a lint of many files stays in the process."""
    import dllint.runner
    from dllint.pipeline import lint_buffer

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(MODELS)
    for n in range(dllint.runner._PARALLEL_THRESHOLD + 2):
        (tmp_path / f"train_{n}.py").write_text(TRAIN)

    def no_workers():
        raise AssertionError("a worker process was started")

    monkeypatch.setattr(dllint.runner, "_context", no_workers)
    findings = lint_buffer(str(tmp_path / "models.py"), MODELS, live=LiveProjects())
    assert findings == []  # the DL201s lie in the training scripts, which the buffer's lint does not show
    with pytest.raises(AssertionError, match="worker process"):
        lint_buffer(str(tmp_path / "models.py"), MODELS)


def test_a_run_over_the_project_root_walks_it_once_and_finds_what_a_run_over_a_folder_finds(tmp_path, monkeypatch):
    """`dllint .` at the project root names the walk the project context needs: it is not walked
    twice. A run naming a folder below the root walks both, and reports the same for its files."""
    import json

    import dllint.discovery
    from tests.invoke import invoke

    packages = ["pkg_cat_distributed", "pkg_loss_keyword_spotting"]
    for name in packages:
        shutil.copytree(os.path.join(FIXTURES, name), tmp_path / name)
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nselect = ["ALL"]\n')
    walked = []
    real_walk = dllint.discovery._walk
    monkeypatch.setattr(dllint.discovery, "_walk", lambda given, *rest: walked.append(given) or real_walk(given, *rest))

    def findings(*paths):
        walked.clear()
        result = invoke("--format", "json", "--no-cache", *paths, cwd=tmp_path)
        assert result.returncode in (0, 1), result.stderr
        return {(os.path.abspath(os.path.join(tmp_path, f["path"])), f["line"], f["code"], f["message"])
                for f in json.loads(result.stdout)}

    whole = findings(".")
    assert walked == ["."]
    assert len(whole) >= 3
    for name in packages:
        below = findings(name)
        assert walked == [name, str(tmp_path)]
        assert below == {f for f in whole if f[0].startswith(str(tmp_path / name) + os.sep)}
