"""The project index: a run naming a few files knows the rest of its project from summaries kept in
`.dllint_cache/`, reads only the files its queries consult, and finds what a run without it finds."""

import json
import os
import shutil

import pytest

from dllint.index.summaries import IndexedFile, ProjectIndex, summarize
from dllint.engine import load_source
from tests.expectations import python_files
from tests.invoke import invoke
from tests.test_project_context import LOGITS_MODELS, MODELS, PACKAGES, TRAIN, _json_codes

AUGMENT = '''\
import torch


def flip(images):
    return torch.flip(images, dims=[-1])
'''
README_SCRIPT = "print('no training code here')\n"


def _project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'digits'\n")
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "augment.py").write_text(AUGMENT)
    (tmp_path / "notes.py").write_text(README_SCRIPT)
    return tmp_path


def _age(path, seconds=3600):
    """Date a file back, as a file that was not just written (see ProjectIndex.context_file)."""
    status = os.stat(path)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns - seconds * 10**9))


def test_a_summary_holds_what_the_catalogue_reads_of_a_file(tmp_path):
    from dllint.index.catalogue import content_hash, imports

    (tmp_path / "train.py").write_text(TRAIN)
    item = load_source(str(tmp_path / "train.py"), "train.py")
    summary = summarize(item)
    assert summary.analysed and summary.content_hash == content_hash(item) and summary.size == len(TRAIN)
    assert [(module, list(names)) for module, names in summary.imports] == imports(TRAIN)
    assert ("models", ("Net",)) in summary.imports
    (tmp_path / "notes.py").write_text(README_SCRIPT)
    assert not summarize(load_source(str(tmp_path / "notes.py"), "notes.py")).analysed
    (tmp_path / "binary.py").write_bytes(b"\x00\x01")
    assert summarize(load_source(str(tmp_path / "binary.py"), "binary.py")) is None  # loaded as it is, each time


def test_a_warm_run_naming_one_file_reads_only_the_files_it_consults(tmp_path, monkeypatch):
    import dllint.index.summaries as summaries

    _project(tmp_path)
    for name in ("models.py", "augment.py", "notes.py"):
        _age(tmp_path / name)
    assert _json_codes(invoke("--format", "json", ".", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    index_files = os.listdir(tmp_path / ".dllint_cache" / "index")
    assert len(index_files) == 1
    (tmp_path / "train.py").write_text(TRAIN + "\n")  # the named file changed: it is linted again
    read = []
    original = summaries.load_source
    monkeypatch.setattr(summaries, "load_source", lambda path, *rest: read.append(os.path.basename(path))
                        or original(path, *rest))
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    # models.py defines the Net that train.py trains; augment.py and notes.py are known by their summaries.
    assert read == ["models.py"]


def test_a_changed_unnamed_file_is_noticed(tmp_path):
    _project(tmp_path)
    _age(tmp_path / "models.py")
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    (tmp_path / "models.py").write_text(LOGITS_MODELS)
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == []


def test_a_change_within_the_clock_tick_of_the_last_check_is_noticed(tmp_path):
    # Same size, same modification time: only the content tells, so a file checked right after it
    # was written is read again next time.
    _project(tmp_path)
    models = tmp_path / "models.py"
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    status = os.stat(models)
    swapped = MODELS.replace("F.softmax(", "F.sigmoid(")
    assert len(swapped) == len(MODELS)
    models.write_text(swapped)
    os.utime(models, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == [("train.py", 14, "DL207")]


def test_a_damaged_or_foreign_index_is_rebuilt(tmp_path):
    _project(tmp_path)
    assert _json_codes(invoke("--format", "json", "train.py", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    index_file = tmp_path / ".dllint_cache" / "index" / os.listdir(tmp_path / ".dllint_cache" / "index")[0]
    data = json.loads(index_file.read_text())
    key = str(tmp_path / "models.py")
    for damaged in ([1, 2], ["size", 1, 2, []], [1, 2, 3, ["hash", "size", True, []]]):
        data["files"][key] = damaged
        index_file.write_text(json.dumps(data))
        assert _json_codes(invoke("--format", "json", "--isolated", "train.py", cwd=tmp_path)) == \
            [("train.py", 14, "DL201")]
    index_file.write_text("{" * 100_000)
    assert ProjectIndex(str(tmp_path / ".dllint_cache"), str(tmp_path)).entries == {}


def test_files_known_by_their_summary_are_read_when_consulted(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    index = ProjectIndex(None, str(tmp_path))
    loaded = index.context_file(str(tmp_path / "models.py"), "models.py")
    assert loaded.source == MODELS and loaded.summary.analysed  # read now: there was no saved index
    _age(tmp_path / "models.py")
    index = ProjectIndex(str(tmp_path / ".dllint_cache"), str(tmp_path))
    index.context_file(str(tmp_path / "models.py"), "models.py")
    index.save()
    known = ProjectIndex(str(tmp_path / ".dllint_cache"), str(tmp_path)).context_file(str(tmp_path / "models.py"),
                                                                                      "models.py")
    assert isinstance(known, IndexedFile) and known.context_only and known.summary.analysed
    assert known.source == MODELS and known.error is None


@pytest.mark.parametrize("package", PACKAGES, ids=os.path.basename)
def test_with_a_warm_index_each_file_gets_the_findings_of_the_whole_run(package, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(package, copy)
    (copy / "pyproject.toml").write_text("")
    whole = sorted(_json_codes(invoke("--format", "json", "--no-cache", ".", cwd=copy)))
    for path in python_files(str(copy)):
        _age(path)
    invoke("--format", "json", ".", cwd=copy)  # fills the index (and the results)
    for name in os.listdir(copy / ".dllint_cache"):  # keep the index, not the results
        if name not in ("index", ".gitignore"):
            shutil.rmtree(copy / ".dllint_cache" / name)
    per_file = []
    for path in python_files(str(copy)):
        per_file += _json_codes(invoke("--format", "json", os.path.relpath(path, copy), cwd=copy))
    assert sorted(per_file) == whole


def test_a_warm_run_does_not_summarize_unchanged_files_again(tmp_path, monkeypatch):
    import dllint.index.summaries as summaries

    _project(tmp_path)
    for name in ("models.py", "train.py", "augment.py", "notes.py"):
        _age(tmp_path / name)
    invoke("--format", "json", ".", cwd=tmp_path)
    summarized = []
    original = summaries.summarize
    monkeypatch.setattr(summaries, "summarize", lambda item: summarized.append(item.display_path) or original(item))
    (tmp_path / "augment.py").write_text(AUGMENT + "\n")
    assert _json_codes(invoke("--format", "json", ".", cwd=tmp_path)) == [("train.py", 14, "DL201")]
    assert summarized == ["augment.py"]
