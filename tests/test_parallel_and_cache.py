"""Output does not depend on the number of jobs or on the cache; the cache notices every change."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT, run_dllint

# Multi-file fixture projects: the only fixtures whose findings depend on other files.
PACKAGES = sorted(glob.glob(os.path.join(FIXTURES, "pkg_*")))

MODELS = """\
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return {forward}
"""

TRAIN = """\
import torch
import torch.nn as nn

from models import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    optimizer.step()
"""


def _lint(cwd, *args):
    result = run_dllint("--format", "json", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def serial_output(fixtures_command_line_run):
    """The fixtures linted in one process without a cache: the output every other way must give."""
    return json.loads(fixtures_command_line_run.stdout)


def test_jobs_and_cache_give_identical_output(tmp_path, serial_output):
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    serial = serial_output
    assert len(serial) > 20
    assert _lint(tmp_path, "--jobs", "2", "fixtures") == serial  # fills the cache
    assert os.path.isfile(tmp_path / ".dllint_cache" / ".gitignore")
    assert _lint(tmp_path, "--jobs", "3", "fixtures") == serial  # served from the cache


def test_a_warm_run_answers_from_the_cache_without_importing_libcst(tmp_path):
    # An editor or pre-commit run over unchanged code pays for the cache read only: libcst (0.17 s to
    # import) and the check modules stay unloaded.
    (tmp_path / "models.py").write_text(MODELS.format(forward="torch.softmax(self.fc(x), dim=1)"))
    (tmp_path / "train.py").write_text(TRAIN)
    cold = _lint(tmp_path, ".")
    probe = ("import sys\nfrom dllint.cli import main\nsys.argv = ['dllint', '--format', 'json', '.']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write('libcst loaded: %s' % ('libcst' in sys.modules))\n")
    warm = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    assert json.loads(warm.stdout) == cold and [f["code"] for f in cold] == ["DL201"]
    assert warm.stderr.strip().endswith("libcst loaded: False"), warm.stderr


def test_editing_the_model_file_rechecks_the_training_script(tmp_path):
    (tmp_path / "models.py").write_text(MODELS.format(forward="self.fc(x)"))
    (tmp_path / "train.py").write_text(TRAIN)
    assert _lint(tmp_path, ".") == []
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    findings = _lint(tmp_path, ".")
    assert [(f["path"], f["code"]) for f in findings] == [("train.py", "DL201")]
    assert "models.py:11" in findings[0]["message"]


def test_corrupt_or_foreign_cache_entries_are_ignored(tmp_path):
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    (tmp_path / "train.py").write_text(TRAIN)
    expected = _lint(tmp_path, "--no-cache", ".")
    assert _lint(tmp_path, ".") == expected
    entries = glob.glob(str(tmp_path / ".dllint_cache" / "*" / "*.json"))
    assert entries
    for index, entry in enumerate(entries):
        with open(entry, "w") as handle:
            handle.write("{not json" if index % 2 == 0 else json.dumps({"version": "0.0.0-other", "findings": []}))
    assert _lint(tmp_path, ".") == expected


def _copy_packages(tmp_path):
    """The fixture packages, whose files consult each other, under fixtures/ as in the whole copy."""
    for package in PACKAGES:
        shutil.copytree(package, tmp_path / "fixtures" / os.path.basename(package))


def _in_packages(findings):
    names = {"fixtures/" + os.path.basename(package) + "/" for package in PACKAGES}
    return [f for f in findings if any(f["path"].startswith(name) for name in names)]


def test_concurrent_runs_share_the_cache_safely(tmp_path, serial_output):
    # Three processes racing on one cache over the files that consult each other (a cache entry records
    # what a lint depended on); the standalone fixtures add time, not cases.
    _copy_packages(tmp_path)
    expected = _in_packages(serial_output)
    assert len(expected) > 20
    command = [sys.executable, "-m", "dllint", "--format", "json", "fixtures"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(json.loads(output) == expected for output in outputs)
    assert _lint(tmp_path, "fixtures") == expected


def test_clean_removes_the_cache(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    _lint(tmp_path, ".")
    assert os.path.isdir(tmp_path / ".dllint_cache")
    result = run_dllint("clean", cwd=tmp_path)
    assert result.returncode == 0 and "Removed" in result.stderr
    assert not os.path.exists(tmp_path / ".dllint_cache")


EVALUATE = """\
import torch


def evaluate(model, loader):
    correct = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return correct
"""

TRAIN_AND_EVALUATE = """\
import torch
import torch.nn as nn

from utils import evaluate

model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.Linear(8, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()
for epoch in range(3):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    {switch}
    print(evaluate(model, val_loader))
"""


def _lint_api(directory):
    """Lint through the API, returning the findings and how many files were analysed afresh."""
    from dllint.cache import ResultCache
    from dllint.discovery import discover
    from dllint.engine import display_path, load_source
    from dllint.registry import all_rules
    from dllint.runner import lint_items

    files, roots = discover([str(directory)], [])
    items = [load_source(path, display_path(path)) for path in files]
    result = lint_items(items, [r.code for r in all_rules()], roots, jobs=1, cache=ResultCache(str(directory / ".dllint_cache")))
    return [(os.path.basename(f.path), f.code) for f in result.findings], result.files_analysed


def test_only_the_touched_file_and_the_files_that_consulted_it_are_analysed_again(tmp_path, monkeypatch):
    import dllint.engine

    # One file per chunk, so that the count shows file-level dependencies (files that share a chunk
    # are always analysed together).
    monkeypatch.setattr(dllint.engine, "CHUNK_FILES", 1)
    (tmp_path / "models.py").write_text(MODELS.format(forward="self.fc(x)"))
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "augment.py").write_text("import torch\n\n\ndef flip(x):\n    return torch.flip(x, dims=[-1])\n")
    assert _lint_api(tmp_path) == ([], 3)
    assert _lint_api(tmp_path) == ([], 0)  # nothing changed
    (tmp_path / "augment.py").write_text("import torch\n\n\ndef flip(x):\n    return torch.flip(x, dims=[-2])\n")
    assert _lint_api(tmp_path) == ([], 1)  # nobody consulted augment.py
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    findings, analysed = _lint_api(tmp_path)
    assert findings == [("train.py", "DL201")]
    assert analysed == 2  # models.py and train.py, which resolved Net in it


def _lint_named(paths, cache_directory):
    """Lint `paths` in the company of their project, as the command line does."""
    from dllint.cache import ResultCache
    from dllint.discovery import discover
    from dllint.engine import display_path, load_source
    from dllint.index.project_context import with_project
    from dllint.registry import all_rules
    from dllint.runner import lint_items

    files, _ = discover(paths, [])
    items, roots = with_project([load_source(path, display_path(path)) for path in files], paths)
    result = lint_items(items, [r.code for r in all_rules()], roots, jobs=1, cache=ResultCache(cache_directory))
    return [(os.path.basename(f.path), f.code) for f in result.findings], result.files_analysed


def test_a_run_naming_one_file_reuses_what_a_run_over_the_project_cached(tmp_path, monkeypatch):
    # `dllint .` names every file `train.py`, a run naming models.py finds it as /project/train.py:
    # both spellings must share one cache entry, or an editor's first save re-lints the project.
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(MODELS.format(forward="F.softmax(self.fc(x), dim=1)"))
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "augment.py").write_text("import torch\n\n\ndef flip(x):\n    return torch.flip(x, dims=[-1])\n")
    monkeypatch.chdir(tmp_path)
    cache = str(tmp_path / ".dllint_cache")
    assert _lint_named(["."], cache) == ([("train.py", "DL201")], 3)
    assert _lint_named(["train.py"], cache) == ([("train.py", "DL201")], 0)
    assert _lint_named([str(tmp_path / "models.py")], cache) == ([], 0)
    (tmp_path / "models.py").write_text(MODELS.format(forward="self.fc(x)"))
    assert _lint_named(["train.py"], cache) == ([], 1)  # train.py, which consulted models.py


def test_editing_a_caller_rechecks_the_helper_it_calls(tmp_path):
    # Whether evaluate() runs in training mode depends on what its caller did before the call.
    (tmp_path / "utils.py").write_text(EVALUATE)
    (tmp_path / "train.py").write_text(TRAIN_AND_EVALUATE.format(switch="model.eval()"))
    assert _lint_api(tmp_path)[0] == []
    (tmp_path / "train.py").write_text(TRAIN_AND_EVALUATE.format(switch="pass"))
    assert _lint_api(tmp_path)[0] == [("utils.py", "DL301")]
    (tmp_path / "train.py").write_text(TRAIN_AND_EVALUATE.format(switch="model.eval()"))
    assert _lint_api(tmp_path)[0] == []


def test_workers_get_consecutive_runs_with_about_the_same_amount_of_source():
    from dllint.runner import balanced_runs

    sizes = [100, 100, 5000, 100, 100, 100, 2500, 2500, 100, 100]
    chunks = [[0, 1], [2], [3, 4, 5], [6], [7], [8, 9]]
    runs = balanced_runs(chunks, sizes, 2)
    assert [chunk for run in runs for chunk in run] == chunks  # every chunk once, in order
    assert runs == [[[0, 1], [2], [3, 4, 5]], [[6], [7], [8, 9]]]  # 5,500 and 5,200 characters
    assert len(balanced_runs(chunks, sizes, 8)) <= len(chunks)
    assert balanced_runs(chunks, sizes, 1) == [chunks]


def test_a_worker_claims_its_own_run_from_the_front_then_the_far_end_of_the_fullest_other_run():
    import multiprocessing

    from dllint.runner import claim_chunk

    # Run 0 owns chunk positions 0-1, run 1 owns 2-6.
    bounds = multiprocessing.get_context().Array("i", [0, 2, 2, 7])
    assert claim_chunk(bounds, 0) == (0, range(1, 2))
    assert claim_chunk(bounds, 1) == (2, range(3, 7))
    assert claim_chunk(bounds, 0) == (1, range(2, 2))
    # Run 0 is done: its worker takes the last chunks of run 1, which keeps its front.
    assert claim_chunk(bounds, 0) == (6, range(0))
    assert claim_chunk(bounds, 0) == (5, range(0))
    assert claim_chunk(bounds, 1) == (3, range(4, 5))
    assert claim_chunk(bounds, 1) == (4, range(5, 5))
    assert claim_chunk(bounds, 0) is None
    assert claim_chunk(bounds, 1) is None
    assert list(bounds) == [2, 2, 5, 5]


def _package_chunks(monkeypatch):
    """The fixture packages' catalogue, every rule, and chunks of 6 files. The packages: a chunk's
    outcome can depend on its worker's past only where files consult each other."""
    from dllint import engine
    from dllint.discovery import discover
    from dllint.index.catalogue import build_catalogue
    from dllint.registry import all_rules

    monkeypatch.setattr(engine, "CHUNK_FILES", 6)
    paths, roots = discover(PACKAGES, [])
    items = sorted((engine.load_source(p, engine.display_path(p)) for p in paths), key=lambda i: i.path)
    catalogue = build_catalogue(items, roots)
    return catalogue, [rule.code for rule in all_rules()], engine.chunks(catalogue)


def test_a_chunk_gives_the_same_outcome_whatever_its_worker_linted_before(monkeypatch):
    # Workers take over each other's chunks as they finish, so a chunk's findings and recorded
    # dependencies must not depend on what the worker's store already holds.
    from dllint import engine

    catalogue, codes, pieces = _package_chunks(monkeypatch)
    assert len(pieces) > 4

    def outcomes(order, own):
        store = engine.FactsStore(catalogue, own=own)
        found = {}
        for chunk in order:
            for outcome in engine.lint_chunk(catalogue, store, chunk, codes):
                found[outcome.index] = (outcome.findings, outcome.consulted, outcome.consulted_importers)
        return found

    forward = outcomes(pieces, own=catalogue.analysed)
    assert sum(len(findings) for findings, _, _ in forward.values()) > 20
    assert outcomes(pieces[::-1], own=[]) == forward


def test_after_a_chunk_the_store_keeps_only_files_linked_to_what_it_still_lints(monkeypatch):
    # A worker drops a parsed file once no file it still lints imports it or is imported by it; the
    # chunks' outcomes are those of a store that keeps every file it parsed.
    from dllint import engine

    catalogue, codes, pieces = _package_chunks(monkeypatch)
    linked = {}
    for target, importers in catalogue.importers.items():
        for importer in importers:
            linked.setdefault(target, set()).add(importer)
            linked.setdefault(importer, set()).add(target)

    def outcomes(shrinking):
        store = engine.FactsStore(catalogue, own=catalogue.analysed)
        found, dropped_imported, kept = {}, 0, 0
        for position, chunk in enumerate(pieces):
            if shrinking:
                store.own = {index for later in pieces[position:] for index in later}  # as a worker claims
            before = set(store._held)
            for outcome in engine.lint_chunk(catalogue, store, chunk, codes):
                found[outcome.index] = (outcome.findings, outcome.consulted, outcome.consulted_importers)
            if shrinking:
                remaining = {index for later in pieces[position + 1:] for index in later}
                assert all(index in remaining or linked.get(index, set()) & remaining for index in store._held)
                kept += len(store._held)
                dropped_imported += sum(1 for index in before | set(chunk)
                                        if index not in store._held and catalogue.importers_of(index))
        return found, dropped_imported, kept

    kept_all, _, _ = outcomes(shrinking=False)
    shrunk, dropped_imported, kept = outcomes(shrinking=True)
    assert dropped_imported > 0 and kept > 0  # imported files went once their neighbours were linted; others stayed
    assert sum(len(findings) for findings, _, _ in shrunk.values()) > 20
    assert shrunk == kept_all
