"""A seeded, deterministic fuzzing suite: mutated fixture code and notebooks and filesystem tricks,
linted through the real command line, and programs generated from Python's grammar (hypothesmith),
linted in this process. Whatever it is fed, dllint reports findings or DL000: never a
traceback, a crash (DL999, a signal), a hang or an exit code other than 0 or 1.

The seed is fixed so that a failure reproduces; DLLINT_FUZZ_SEED runs another sample.
"""

import json
import os
import random

import pytest

from tests.conftest import FIXTURES, run_dllint
from tests.expectations import python_files

SEED = int(os.environ.get("DLLINT_FUZZ_SEED", "20"))
MUTATED_FILES = 48
MUTATED_NOTEBOOKS = 12

# Fragments that break code the ways editors and humans do: unbalanced brackets, stray keywords,
# IPython syntax outside a notebook, form feeds, tabs, non-ASCII, a null byte.
_FRAGMENTS = ["(", ")", "[", "]", "{", "}", ":", "lambda", "yield", "await", "return", "\\", "'", '"""',
              "%time", "!ls", "model?", "\f", "\t", "é", "\x00", "async ", "def", "class X(nn.Module):",
              "optimizer.step()", "loss.backward()", "with torch.no_grad():", "for x in loader:", "else:",
              "@", "*", "**", "->", ":=", "if", "#", "0x", "1e", "nonlocal x", "global y", "del", "pass"]


def _mutate(source: str, rng: random.Random) -> str:
    lines = source.split("\n")
    for _ in range(rng.randint(1, 4)):
        if not lines:
            break
        index = rng.randrange(len(lines))
        action = rng.randrange(8)
        if action == 0:
            del lines[index]
        elif action == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif action == 2:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == 3:
            line = lines[index]
            cut = rng.randint(0, len(line))
            lines[index] = line[:cut] + rng.choice(_FRAGMENTS) + line[cut:]
        elif action == 4:
            lines[index] = " " * rng.choice([1, 2, 3, 8]) + lines[index]
        elif action == 5:
            lines[index] = lines[index].lstrip()
        elif action == 6:
            line = lines[index]
            cut = rng.randint(0, len(line))
            lines[index] = line[:cut] + line[cut + 1:]
        else:
            lines = lines[:index]  # truncated, as a file saved mid-edit
    return "\n".join(lines)


def _fixture_sources():
    return [path for path in python_files(FIXTURES)]


def _check_run(result):
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode in (0, 1), (result.returncode, result.stderr[-3000:])
    findings = json.loads(result.stdout)
    crashed = [f for f in findings if f["code"] == "DL999"]
    assert not crashed, crashed
    return findings


def test_mutated_training_code_gives_findings_or_dl000(tmp_path):
    rng = random.Random(SEED)
    sources = _fixture_sources()
    for number in range(MUTATED_FILES):
        path = rng.choice(sources)
        with open(path, encoding="utf-8") as handle:
            mutated = _mutate(handle.read(), rng)
        (tmp_path / f"m{number:03d}_{os.path.basename(path)}").write_bytes(
            mutated.encode("utf-8", "surrogatepass"))
    findings = _check_run(run_dllint(str(tmp_path), "--no-cache", "--isolated", "--format", "json"))
    assert {f["path"] for f in findings}, "the mutations produced at least some findings"


def test_mutated_notebooks_give_findings_or_dl000(tmp_path):
    rng = random.Random(SEED + 1)
    sources = _fixture_sources()
    for number in range(MUTATED_NOTEBOOKS):
        with open(rng.choice(sources), encoding="utf-8") as handle:
            lines = _mutate(handle.read(), rng).split("\n")
        # Cut into cells at random lines; sprinkle IPython syntax and markdown between them.
        cuts = sorted(rng.sample(range(1, max(len(lines), 2)), k=min(4, max(len(lines) - 1, 1))))
        cells, start = [], 0
        for cut in [*cuts, len(lines)]:
            text = "\n".join(lines[start:cut])
            if rng.random() < 0.3:
                text = rng.choice(["%matplotlib inline\n", "!pip install -q torch\n", "%%time\n", "%%bash\n"]) + text
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                          "source": text.splitlines(True) if rng.random() < 0.8 else text})
            if rng.random() < 0.3:
                cells.append({"cell_type": "markdown", "metadata": {}, "source": ["# notes"]})
            start = cut
        document = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        text = json.dumps(document, indent=rng.choice([1, 2, None]), ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.15:
            text = text[:rng.randrange(len(text))]  # a notebook saved half-way
        (tmp_path / f"n{number:03d}.ipynb").write_text(text, encoding="utf-8")
    _check_run(run_dllint(str(tmp_path), "--no-cache", "--isolated", "--format", "json"))
    # Fixes written back keep every notebook valid JSON (or leave an unreadable one untouched).
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    fixed = run_dllint(str(tmp_path), "--no-cache", "--isolated", "--fix", "--unsafe-fixes", "--format", "json")
    _check_run(fixed)
    for path, data in before.items():
        try:
            json.loads(data)
        except ValueError:
            assert path.read_bytes() == data
            continue
        json.loads(path.read_bytes())


@pytest.mark.skipif(os.name != "posix", reason="POSIX filesystem tricks")
def test_filesystem_tricks_in_one_walk(tmp_path):
    (tmp_path / "train.py").write_text("import torch\nfor x in loader:\n    loss = model(x).sum()\n"
                                       "    loss.backward()\n    optimizer.step()\n")
    os.mkfifo(tmp_path / "pipe.py")
    os.symlink("/dev/zero", tmp_path / "zeros.py")
    os.symlink("missing.py", tmp_path / "dangling.py")
    os.symlink("loop_b.py", tmp_path / "loop_a.py")
    os.symlink("loop_a.py", tmp_path / "loop_b.py")
    os.mkdir(tmp_path / "package.py")
    (tmp_path / "package.py" / "inner.ipynb").write_text("not json")
    (tmp_path / "empty.ipynb").write_text("")
    (tmp_path / "binary.py").write_bytes(random.Random(SEED).randbytes(256) + b"\x00torch")
    (tmp_path / "link_to_train.py").symlink_to(tmp_path / "train.py")
    result = run_dllint(str(tmp_path), "--no-cache", "--isolated", "--format", "json")
    findings = _check_run(result)
    by_path = {(os.path.basename(f["path"]), f["code"]) for f in findings}
    # The file and a link to it are one file, linted once under the first name.
    assert {("train.py", "DL101"), ("link_to_train.py", "DL101")} & by_path
    assert ("inner.ipynb", "DL000") in by_path and ("empty.ipynb", "DL000") in by_path
    assert ("binary.py", "DL000") in by_path
    assert not {name for name, _ in by_path} & {"pipe.py", "zeros.py", "dangling.py", "loop_a.py", "loop_b.py"}


hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")


@hypothesis.settings(max_examples=150, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(program=hypothesmith.from_grammar())
def test_generated_programs_give_findings_or_dl000_never_a_crash(program):
    """Programs generated from Python's grammar (derandomized: the same sample every run), made to
    look like training code so that every rule runs on them."""
    from dllint import registry
    from dllint.engine import load_source
    from dllint.runner import lint_sources

    source = "import torch\nimport torch.nn as nn\n" + program
    item = load_source("generated.py", "generated.py", source.encode("utf-8", "surrogatepass"))
    result = lint_sources([item], [r.code for r in registry.all_rules()])
    assert not [f for f in result.findings if f.code == "DL999"], result.findings
