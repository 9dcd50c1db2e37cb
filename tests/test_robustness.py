"""Nothing a user feeds dllint produces a traceback."""

import os

import pytest

from tests.conftest import BUGGY_SCRIPT, run_dllint

GOOD = "import torch\nmodel = torch.nn.Linear(2, 2)\n"


def lint(tmp_path, *names):
    return run_dllint("--format", "json", *names, cwd=tmp_path)


def test_unparsable_files_are_reported_and_others_still_linted(tmp_path):
    (tmp_path / "syntax.py").write_text("import torch\ndef f(:\n    pass\n")
    (tmp_path / "python2.py").write_text("import torch\nprint 'hello'\n")
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x02\x01\x00\x00torch")
    (tmp_path / "latin.py").write_bytes(b"import torch\nname = '\xff\xfe'\n")
    (tmp_path / "buggy.py").write_text(
        "import torch\nfor x, y in loader:\n    loss = model(x).sum()\n    loss.backward()\n    optimizer.step()\n")
    result = lint(tmp_path, ".")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    import json

    findings = {(f["path"], f["code"]): f for f in json.loads(result.stdout)}
    assert findings[("syntax.py", "DL000")]["line"] == 2
    assert findings[("python2.py", "DL000")]["line"] == 2
    assert "null byte" in findings[("binary.py", "DL000")]["message"]
    latin = findings[("latin.py", "DL000")]
    assert latin["line"] == 2 and "utf-8" in latin["message"]
    assert ("buggy.py", "DL101") in findings


def test_directory_without_python_files(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    result = run_dllint(str(tmp_path))
    assert result.returncode == 0
    assert result.stderr.strip() == "All checks passed (0 files checked)."


def test_empty_file(tmp_path):
    (tmp_path / "empty.py").write_text("")
    result = run_dllint(str(tmp_path / "empty.py"))
    assert result.returncode == 0 and "Traceback" not in result.stderr


def test_huge_file_is_skipped_with_a_clear_notice(tmp_path):
    block = "import torch\n" + "".join(f"def f{i}(x):\n    return torch.relu(x) * {i}\n" for i in range(220_000))
    assert len(block) > 10_000_000
    (tmp_path / "huge.py").write_text(block)
    result = run_dllint("huge.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dllint: warning: huge.py is larger than 2 MB: skipped" in result.stderr


def test_deeply_nested_code_does_not_crash(tmp_path):
    (tmp_path / "parens.py").write_text("import torch\nx = " + "(" * 5000 + "1" + ")" * 5000 + "\n")
    (tmp_path / "unary.py").write_text("import torch\nx = " + "-" * 900 + "1\n")
    nested = "import torch\n" + "".join("    " * i + f"if x{i}:\n" for i in range(90)) + "    " * 90 + "pass\n"
    (tmp_path / "blocks.py").write_text(nested)
    result = lint(tmp_path, ".")
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 1)
    import json

    codes = {(f["path"], f["code"]) for f in json.loads(result.stdout)}
    assert ("parens.py", "DL000") in codes


def test_a_fix_that_fails_leaves_the_finding_and_an_internal_error(tmp_path, monkeypatch):
    import dllint.engine
    import dllint.runner
    from dllint import registry

    (tmp_path / "a.py").write_text(
        "import torch\nfor x, y in loader:\n    loss = model(x).sum()\n    loss.backward()\n    optimizer.step()\n")

    def explode(facts, fix):
        raise IndexError("no such line")

    monkeypatch.setattr(dllint.engine, "_edit", explode)
    result = dllint.runner.lint_paths([str(tmp_path)], ["DL101"])
    assert [(f.code, f.fix) for f in result.findings if f.code == "DL101"] == [("DL101", None)]
    internal = [f for f in result.findings if f.code == registry.INTERNAL_ERROR.code]
    assert len(internal) == 1 and "DL101" in internal[0].message and "no such line" in internal[0].message


def test_a_crashing_rule_becomes_an_internal_error_finding(tmp_path, monkeypatch):
    from dllint import registry
    from dllint.runner import lint_paths

    (tmp_path / "a.py").write_text(
        "import torch\nfor x, y in loader:\n    loss = model(x).sum()\n    loss.backward()\n    optimizer.step()\n")
    (tmp_path / "b.py").write_text(GOOD)
    def explode(ctx):
        raise RuntimeError("boom")

    registry.get_rule("DL201").check  # imports the checks, so that this one is not registered over
    monkeypatch.setitem(registry._CHECKS, "DL201", explode)
    result = lint_paths([str(tmp_path)], [r.code for r in registry.all_rules()])
    by_code = {}
    for finding in result.findings:
        by_code.setdefault(finding.code, []).append(finding)
    assert {os.path.basename(f.path) for f in by_code["DL999"]} == {"a.py", "b.py"}
    assert all("DL201" in f.message and "boom" in f.message for f in by_code["DL999"])
    assert "DL101" in by_code  # the other rules still ran


def test_an_internal_failure_exits_2_with_one_line_not_a_traceback(tmp_path, monkeypatch):
    import dllint.runner
    from tests.invoke import invoke

    (tmp_path / "train.py").write_text(BUGGY_SCRIPT)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug in the runner")

    monkeypatch.setattr(dllint.runner, "lint_items", broken)
    result = invoke("--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "dllint: internal error: RuntimeError: simulated bug in the runner (please report it)"


@pytest.mark.parametrize("damage", ["deeply nested", "string for a number", "list for a fix"])
def test_a_damaged_cache_entry_is_recomputed_not_fatal(tmp_path, damage):
    import glob
    import json

    from tests.invoke import invoke

    (tmp_path / "train.py").write_text(BUGGY_SCRIPT)
    first = invoke("--format", "json", "train.py", cwd=tmp_path)
    # The result entries (the project index and the saved imports beside them are damaged below and in
    # test_project_index.py).
    entries = [path for path in glob.glob(str(tmp_path / ".dllint_cache" / "*" / "*.json"))
               if os.path.basename(os.path.dirname(path)) not in ("index", "imports")]
    assert first.returncode == 1 and entries
    for path in entries:
        with open(path, encoding="utf-8") as handle:
            entry = json.load(handle)
        if damage == "deeply nested":
            text = json.dumps(entry)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
        else:
            for finding in entry["findings"]:
                if damage == "string for a number":
                    finding["line"] = "eight"
                else:
                    finding["fix"] = ["not", "a", "fix"]
            text = json.dumps(entry)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    again = invoke("--format", "json", "train.py", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)


@pytest.mark.parametrize("damage", ["deeply nested", "a file that is not analysed", "the file itself",
                                    "a string for an index", "a number for a list", "an entry of the wrong length"])
def test_damaged_saved_imports_are_resolved_again_not_trusted(tmp_path, damage):
    """The imports a run saved (.dllint_cache/imports/) say which files each file imports: a damaged
    entry must neither crash a run nor make a file import something else."""
    import glob
    import json

    from dllint.discovery import DEFAULT_EXCLUDES, discover_files
    from dllint.engine import load_source
    from dllint.index.catalogue import SavedImports, build_catalogue, path_key
    from dllint.index.project_context import with_project
    from tests.invoke import invoke
    from tests.test_project_context import MODELS, TRAIN

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "train.py").write_text(TRAIN)
    first = invoke("--format", "json", ".", cwd=tmp_path)
    saved = glob.glob(str(tmp_path / ".dllint_cache" / "imports" / "*.json"))
    assert first.returncode == 1 and len(saved) == 1
    with open(saved[0], encoding="utf-8") as handle:
        data = json.load(handle)
    files = data["files"]
    importer = next(n for n, (_, targets) in files.items() if targets)
    if damage == "deeply nested":
        text = json.dumps(data)[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
    else:
        if damage == "a file that is not analysed":
            files[importer][1] = [len(files) + 5]
        elif damage == "the file itself":
            files[importer][1] = [int(importer)]
        elif damage == "a string for an index":
            files[importer][1] = ["0"]
        elif damage == "a number for a list":
            files[importer][1] = 3
        else:
            files[importer] = [files[importer][0]]
        text = json.dumps(data)

    def damage_saved_imports():
        with open(saved[0], "w", encoding="utf-8") as handle:
            handle.write(text)

    damage_saved_imports()
    for entry in glob.glob(str(tmp_path / ".dllint_cache" / "*" / "*.json")):
        if os.path.basename(os.path.dirname(entry)) not in ("index", "imports"):
            os.remove(entry)  # the results: the run lints again, with the saved imports
    again = invoke("--format", "json", ".", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    damage_saved_imports()  # the run saved them again, repaired
    paths = discover_files([str(tmp_path)], DEFAULT_EXCLUDES).files
    items, roots = with_project([load_source(p, p) for p in paths], [str(tmp_path)])
    ordered = sorted(items, key=lambda item: path_key(item.path))
    fresh = build_catalogue(ordered, roots)
    assert fresh.importers  # train.py imports models.py
    assert build_catalogue(ordered, roots, saved=SavedImports(str(tmp_path / ".dllint_cache"), roots)).importers == \
        fresh.importers
