"""bench/corpus/corpus.py without the network: manifest and triage validation, export, the join."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = importlib.util.spec_from_file_location("corpus", os.path.join(ROOT, "bench", "corpus", "corpus.py"))
corpus = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(corpus)


def entry(index, half, kind="tutorial", **extra):
    return {"name": f"owner{index}/repo{index}", "commit": f"{index:040x}", "kind": kind, "half": half, **extra}


def manifest(per_half=2, **top):
    return {"repo": [entry(i, "tuning") for i in range(per_half)]
            + [entry(100 + i, "validation") for i in range(per_half)], **top}


def test_the_committed_manifest_is_valid_and_split_in_two_halves_of_twenty():
    repos = corpus.load_manifest()
    halves = {half: corpus.select(repos, half) for half in corpus.HALVES}
    assert len(halves["tuning"]) >= 20 and len(halves["validation"]) >= 20
    assert len({r["name"].lower() for r in repos}) == len(repos)


def test_a_valid_manifest_passes():
    assert len(corpus.validate_manifest(manifest(), min_per_half=2)) == 4


@pytest.mark.parametrize("change, message", [
    (lambda m: m["repo"].append(dict(m["repo"][0], half="validation")), "listed twice"),
    (lambda m: m["repo"][0].update(commit="abc123"), "40 lowercase hex"),
    (lambda m: m["repo"][0].update(commit="G" * 40), "40 lowercase hex"),
    (lambda m: m["repo"][0].update(half="both"), "half must be"),
    (lambda m: m["repo"][0].update(kind="misc"), "kind must be"),
    (lambda m: m["repo"][0].update(name="no-owner"), "owner/name"),
    (lambda m: m["repo"][0].update(paths="examples"), "paths must be"),
    (lambda m: m["repo"][0].update(branch="main"), "unknown field"),
    (lambda m: m["repo"].pop(), "validation half has 1"),
    (lambda m: m.update(tuning_only=["owner100/repo100"]), "only be in tuning"),
])
def test_an_invalid_manifest_is_refused_with_its_reason(change, message):
    data = manifest()
    change(data)
    with pytest.raises(corpus.CorpusError, match=message):
        corpus.validate_manifest(data, min_per_half=2)


def test_tuning_only_repositories_may_be_in_tuning():
    data = manifest(tuning_only=["owner0/repo0"])
    assert corpus.validate_manifest(data, min_per_half=2)


def test_triage_lines_parse_and_a_reason_may_contain_colons():
    triage = corpus.parse_triage([
        "# comment",
        "",
        "tuning:a/b/train.py:12:DL101:true:no zero_grad: grads pile up",
        "validation:c/d/x.py:3:DL601:harmless:demo",
    ])
    verdict = triage[("tuning", "a/b/train.py", 12, "DL101")]
    assert verdict.verdict == "true" and verdict.reason == "no zero_grad: grads pile up"
    assert triage[("validation", "c/d/x.py", 3, "DL601")].verdict == "harmless"


@pytest.mark.parametrize("line, message", [
    ("tuning:a/b.py:12:DL101:true", "expected half:path"),
    ("both:a/b.py:12:DL101:true:x", "half must be"),
    ("tuning:a/b.py:x:DL101:true:x", "line must be a number"),
    ("tuning:a/b.py:1:E501:true:x", "code must look like"),
    ("tuning:a/b.py:1:DL101:maybe:x", "verdict must be"),
    ("tuning:a/b.py:1:DL101:true: ", "a one-line reason is required"),
])
def test_a_bad_triage_line_is_refused_with_its_line_number(line, message):
    with pytest.raises(corpus.CorpusError, match=f"triage:2: {message}"):
        corpus.parse_triage(["# header", line])


def test_a_finding_triaged_twice_is_refused():
    with pytest.raises(corpus.CorpusError, match="triaged twice"):
        corpus.parse_triage(["tuning:a.py:1:DL101:true:x", "tuning:a.py:1:DL101:harmless:y"])


def finding(path, line, code):
    return {"path": path, "line": line, "code": code, "message": "m"}


def test_tally_joins_findings_with_verdicts_per_rule():
    triage = corpus.parse_triage([
        "tuning:r/a.py:1:DL101:true:x",
        "tuning:r/a.py:5:DL601:false-alarm:x",
        "tuning:r/b.py:9:DL601:harmless:x",
        "tuning:r/gone.py:2:DL101:true:fixed since",
        "validation:r/a.py:1:DL101:false-alarm:other half",
    ])
    findings = [finding("./r/a.py", 1, "DL101"), finding("r/a.py", 1, "DL101"),
                finding("r/a.py", 5, "DL601"), finding("r/b.py", 9, "DL601"),
                finding("r/c.py", 7, "DL601"), finding("r/broken.py", 1, "DL000")]
    rules, untriaged, stale, unparseable = corpus.tally(findings, triage, "tuning")
    assert rules["DL101"]["findings"] == 2 and rules["DL101"]["true"] == 2
    assert rules["DL601"]["findings"] == 3
    assert (rules["DL601"]["false-alarm"], rules["DL601"]["harmless"], rules["DL601"]["untriaged"]) == (1, 1, 1)
    assert "DL000" not in rules and unparseable == 1
    assert [f["path"] for f in untriaged] == ["r/c.py"]
    assert [(s.path, s.line) for s in stale] == [("r/gone.py", 2)]
    assert corpus.precision(rules["DL101"]) == 1.0
    assert corpus.precision(rules["DL601"]) == 0.0


def test_report_prints_per_rule_rates_and_a_total():
    rules = {"DL101": corpus.collections.Counter(findings=2, true=1, harmless=1),
             "DL601": corpus.collections.Counter(findings=2, **{"false-alarm": 1, "untriaged": 1})}
    text = corpus.report("tuning", 3, 2000, rules, [], [], 0)
    lines = text.splitlines()
    assert lines[0].startswith("tuning: 3 files, 2.0 KLOC")
    dl101 = next(line for line in lines if line.startswith("DL101")).split()
    assert dl101 == ["DL101", "2", "1.000", "1", "0", "1", "0", "50%"]
    total = next(line for line in lines if line.startswith("total")).split()
    assert total == ["total", "4", "2.000", "1", "1", "1", "1", "33%"]


def test_notebooks_become_scripts_of_their_code_cells_with_magics_commented():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import torch\n"]},
        {"cell_type": "code", "source": "!pip install x\nmodel = torch.nn.Linear(2, 2)"},
    ]}
    script = corpus.notebook_to_script(json.dumps(notebook))
    assert "# %matplotlib inline" in script and "# !pip install x" in script
    assert "import torch" in script and "model = torch.nn.Linear(2, 2)" in script
    assert "title" not in script
    compile(script, "nb.py", "exec")
    assert corpus.notebook_to_script("not json") is None


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def make_repo(tmp_path):
    """A local repository with a .py file, a notebook, a text file and a file outside `paths`."""
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    (work / "examples" / "train.py").write_text("import torch\n")
    (work / "examples" / "demo.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "code", "source": ["x = 1\n"]}]}))
    (work / "examples" / "notes.txt").write_text("not code\n")
    (work / "setup.py").write_text("print('outside')\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", "-C", str(work), *command], check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    mirror = tmp_path / "mirrors" / "owner+proj" / "repo"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirror)], check=True, capture_output=True)
    return commit, tmp_path / "mirrors"


@needs_git
def test_export_writes_the_pinned_python_files_and_notebooks_from_a_mirror(tmp_path):
    commit, mirrors = make_repo(tmp_path)
    repo = {"name": "owner/proj", "commit": commit, "kind": "tutorial", "half": "validation",
            "paths": ["examples"]}
    out = tmp_path / "out"
    corpus.export([repo], str(out), str(tmp_path / "cache"), str(mirrors))
    exported = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert exported == ["validation/owner/proj/examples/demo.ipynb.py",
                        "validation/owner/proj/examples/train.py"]
    with pytest.raises(corpus.CorpusError, match="not empty"):
        corpus.export([repo], str(out), str(tmp_path / "cache"), str(mirrors))


@needs_git
def test_export_refuses_a_commit_that_was_never_fetched(tmp_path):
    _, mirrors = make_repo(tmp_path)
    repo = {"name": "owner/proj", "commit": "f" * 40, "kind": "tutorial", "half": "tuning"}
    with pytest.raises(corpus.CorpusError, match="not fetched"):
        corpus.export([repo], str(tmp_path / "out"), str(tmp_path / "cache"), str(mirrors))


def test_measure_runs_any_dllint_command_and_joins_the_triage(tmp_path, capsys):
    half = tmp_path / "export" / "tuning" / "o" / "r"
    half.mkdir(parents=True)
    (half / "train.py").write_text("a = 1\nb = 2\n")
    fake_dllint = tmp_path / "fake_dllint.py"
    fake_dllint.write_text(textwrap.dedent("""
        import json, sys
        print(json.dumps([{"path": "o/r/train.py", "line": 2, "code": "DL101", "message": "m"},
                          {"path": "o/r/train.py", "line": 1, "code": "DL601", "message": "m"}]))
        sys.exit(1)
    """))
    triage = tmp_path / "triage.txt"
    triage.write_text("tuning:o/r/train.py:2:DL101:true:clears nothing\n")
    manifest_file = tmp_path / "manifest.toml"
    manifest_file.write_text("".join(
        f'[[repo]]\nname = "o/r{i}"\ncommit = "{i:040x}"\nkind = "beginner"\n'
        f'half = "{"tuning" if i % 2 else "validation"}"\n' for i in range(40)))
    code = corpus.main(["--manifest", str(manifest_file), "measure", "--dir", str(tmp_path / "export"),
                        "--half", "tuning", "--dllint", f"{sys.executable} {fake_dllint}",
                        "--triage", str(triage), "--untriaged"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "tuning: 1 files, 0.0 KLOC, 0 unparseable (DL000, not counted)"
    assert next(line for line in out.splitlines() if line.startswith("DL101")).split()[-1] == "100%"
    assert "tuning:o/r/train.py:1:DL601:?:m" in out


def test_measure_reports_a_dllint_that_prints_no_json_in_one_line(tmp_path, capsys):
    (tmp_path / "export" / "tuning").mkdir(parents=True)
    manifest_file = tmp_path / "manifest.toml"
    manifest_file.write_text("".join(
        f'[[repo]]\nname = "o/r{i}"\ncommit = "{i:040x}"\nkind = "beginner"\n'
        f'half = "{"tuning" if i % 2 else "validation"}"\n' for i in range(40)))
    code = corpus.main(["--manifest", str(manifest_file), "measure", "--dir", str(tmp_path / "export"),
                        "--half", "tuning", "--dllint", f"{sys.executable} -c print('oops')"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: dllint gave no JSON") and err.count("\n") == 1


def test_the_committed_triage_names_only_manifest_repositories_of_its_half():
    halves = {r["name"]: r["half"] for r in corpus.load_manifest()}
    for (half, path, _, _), verdict in corpus.load_triage().items():
        owner_name = "/".join(path.split("/")[:2])
        assert halves.get(owner_name) == half, f"{path}: not a {half} repository of the manifest"
        assert verdict.verdict in corpus.VERDICTS


def test_compare_tabulates_two_runs_of_one_half_per_rule():
    triage = corpus.parse_triage([
        "tuning:r/a.py:1:DL301:false-alarm:x",
        "tuning:r/a.py:2:DL301:true:x",
        "tuning:r/b.py:3:DL601:harmless:x",
    ])
    before = {"half": "tuning", "files": 2, "lines": 2000, "findings": [
        finding("r/a.py", 1, "DL301"), finding("r/a.py", 2, "DL301"), finding("r/b.py", 3, "DL601")]}
    after = {"half": "tuning", "files": 2, "lines": 2000, "findings": [
        finding("r/a.py", 2, "DL301"), finding("r/c.py", 9, "DL101")]}
    table = corpus.compare(before, after, triage).splitlines()
    assert table[0] == "tuning: 2 files, 2.0 KLOC"
    assert "| DL301 | 2 (1 / 1 / 0) | 1 (1 / 0 / 0) |" in table
    assert "| DL601 | 1 (0 / 0 / 1) | 0 |" in table
    assert "| DL101 | 0 | 1 (0 / 0 / 0, 1 untriaged) |" in table
    assert "| per KLOC | 1.500 | 1.000 |" in table
    assert "| true share | 33% | 100% |" in table
    with pytest.raises(corpus.CorpusError, match="cannot compare"):
        corpus.compare(before, dict(after, half="validation"), triage)
