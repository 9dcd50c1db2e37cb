"""Every output format, end to end through the command line; SARIF is checked against the official schema."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree

import pytest

from dllint.findings import Finding
from dllint.output import OutputOptions, get_formatter
from tests.conftest import ROOT, run_dllint
from tests.invoke import invoke

SARIF_SCHEMA = os.path.join(ROOT, "..", "shared", "schemas", "sarif-schema-2.1.0.json")

# DL201 on line 8 (softmax into cross-entropy), DL101 on line 10 (no zero_grad).
BUGGY = textwrap.dedent("""\
    import torch
    import torch.nn as nn

    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    criterion = nn.CrossEntropyLoss()
    for x, y in loader:
    \tloss = criterion(torch.softmax(model(x), dim=1), y)
    \tloss.backward()
    \toptimizer.step()
    """)
CLEAN = "import torch\nx = torch.zeros(3)\n"


def write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def no_color_env(**extra):
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update(extra)
    return environment


def validate_sarif(document):
    if not os.path.isfile(SARIF_SCHEMA):
        pytest.skip(f"the SARIF 2.1.0 schema is not at {os.path.normpath(SARIF_SCHEMA)}")
    import jsonschema

    with open(SARIF_SCHEMA, encoding="utf-8") as handle:
        schema = json.load(handle)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_text_with_source_and_caret(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    result = run_dllint("--show-source", "train.py", cwd=tmp_path, env=no_color_env())
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("train.py:8:19: DL201 [softmax-into-cross-entropy] ")
    # The tab stays a tab under the source line, so the caret lines up at any tab width.
    assert lines[1] == "  8 | \tloss = criterion(torch.softmax(model(x), dim=1), y)"
    assert lines[2] == "    | \t                 " + "^" * len("torch.softmax(model(x), dim=1)")
    assert lines[3].startswith("train.py:10:2: DL101")
    assert lines[4:] == ["  10 | \toptimizer.step()", "     | \t" + "^" * len("optimizer.step()")]
    assert "\033[" not in result.stdout


def test_the_source_line_is_found_past_form_feeds_and_old_mac_line_ends(tmp_path):
    # Python keeps a form feed inside its line; str.splitlines would break there and show the line above.
    source = "import torch\nimport torch.nn.functional as F\n\x0c\rclass Net(torch.nn.Module):\n" \
             "    def forward(self, x):\n        return F.dropout(x, 0.5)\n"
    (tmp_path / "m.py").write_bytes(source.encode())
    result = run_dllint("--show-source", "--no-cache", "m.py", cwd=tmp_path, env=no_color_env())
    lines = result.stdout.splitlines()
    assert lines[0].startswith("m.py:6:16: DL303 ")
    assert lines[1] == "  6 |         return F.dropout(x, 0.5)"


def test_colour_only_when_asked_or_on_a_terminal(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    unset = {"NO_COLOR": None, "FORCE_COLOR": None}
    piped = invoke("train.py", cwd=tmp_path, env=unset)
    assert "\033[" not in piped.stdout
    # An explicit --color always wins over NO_COLOR, as https://no-color.org asks.
    forced = invoke("--color", "always", "train.py", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert "\033[1;31mDL201\033[0m" in forced.stdout
    never = invoke("--color", "never", "--show-source", "train.py", cwd=tmp_path, env=unset)
    assert never.stdout == invoke("--show-source", "train.py", cwd=tmp_path, env=unset).stdout


@pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")
def test_auto_colour_on_a_terminal_honours_no_color(tmp_path):
    import pty

    write(tmp_path, "train.py", BUGGY)

    def run_on_terminal(environment):
        main, secondary = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "dllint", "train.py"], cwd=tmp_path, stdout=secondary,
                                   stderr=subprocess.DEVNULL, env=environment)
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal closes when the child exits
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=60)
        os.close(main)
        return b"".join(chunks).decode()

    assert "\033[1;31mDL101\033[0m" in run_on_terminal(no_color_env())
    assert "\033[" not in run_on_terminal(no_color_env(NO_COLOR="1"))


def test_json_and_jsonl_carry_the_same_objects(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    listed = json.loads(invoke("--format", "json", "train.py", cwd=tmp_path).stdout)
    lines = invoke("--format", "jsonl", "train.py", cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line) for line in lines] == listed
    assert [d["code"] for d in listed] == ["DL201", "DL101"]


@pytest.fixture
def repository(tmp_path):
    """A git repository with the buggy file one directory down; without git, a plain directory."""
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write(tmp_path, "src/train.py", BUGGY)
    write(tmp_path, "src/clean.py", CLEAN)
    return tmp_path


def sarif(cwd, *args):
    result = invoke("--format", "sarif", *args, cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)
    validate_sarif(document)
    return document


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_sarif_is_valid_and_complete(repository):
    document = sarif(repository / "src", "--severity", "DL101=info", "train.py", "clean.py")
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    from dllint import __version__

    assert (driver["name"], driver["version"]) == ("dllint", __version__)
    assert driver["informationUri"].startswith("https://")
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert {"DL000", "DL101", "DL201", "DL998", "DL999"} <= set(rules)
    parse_error = rules["DL000"]
    assert parse_error["name"] == "parse-error"
    assert parse_error["shortDescription"]["text"] == "The file could not be parsed as Python."
    assert parse_error["fullDescription"]["text"].startswith("Reports a file that is not valid Python 3")
    with open(os.path.join(ROOT, "rules", "DL000.md"), encoding="utf-8") as handle:
        assert parse_error["help"]["markdown"] == handle.read()
    assert parse_error["helpUri"].endswith("/rules/DL000.md")
    assert rules["DL101"]["defaultConfiguration"]["level"] == "note"  # the --severity override
    assert rules["DL201"]["defaultConfiguration"]["level"] == "error"

    first, second = run["results"]
    assert (first["ruleId"], first["level"], second["ruleId"], second["level"]) == ("DL201", "error", "DL101", "note")
    assert driver["rules"][first["ruleIndex"]]["id"] == "DL201"
    assert "softmax" in first["message"]["text"]
    location = first["locations"][0]["physicalLocation"]
    # Relative to the repository root, not to the directory dllint ran in.
    assert location["artifactLocation"] == {"uri": "src/train.py", "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 8, "startColumn": 19, "endLine": 8,
                                  "endColumn": 19 + len("torch.softmax(model(x), dim=1)")}
    root_uri = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert root_uri.startswith("file://") and root_uri.endswith("/")
    assert first["partialFingerprints"] != second["partialFingerprints"]


def test_sarif_fingerprints_survive_moved_lines_and_outside_a_repository(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    before = sarif(tmp_path, "train.py")["runs"][0]["results"]
    write(tmp_path, "train.py", "# a new first line\n\n" + BUGGY)
    after = sarif(tmp_path, "train.py")["runs"][0]["results"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after] == [10, 12]
    assert [r["partialFingerprints"] for r in after] == [r["partialFingerprints"] for r in before]
    assert after[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "train.py"


def test_sarif_marks_suppressed_results_and_handles_odd_names(tmp_path):
    write(tmp_path, "my train.py", BUGGY.replace("optimizer.step()", "optimizer.step()  # noqa: DL101"))
    write(tmp_path, "tests/helpers_a.py", BUGGY)
    write(tmp_path, "pyproject.toml", '[tool.dllint]\nper-file-ignores = { "tests/*" = ["DL2"] }\n')
    results = sarif(tmp_path, "--show-suppressed", ".")["runs"][0]["results"]
    summary = [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"],
                [s["kind"] for s in r.get("suppressions", [])]) for r in results]
    assert sorted(summary) == [("my%20train.py", "DL101", ["inSource"]), ("my%20train.py", "DL201", []),
                               ("tests/helpers_a.py", "DL101", []), ("tests/helpers_a.py", "DL201", ["external"])]


def test_sarif_without_findings_is_valid(tmp_path):
    write(tmp_path, "clean.py", CLEAN)
    document = sarif(tmp_path, "clean.py")
    assert document["runs"][0]["results"] == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_github_annotations(repository):
    result = invoke("--format", "github", "--severity", "DL101=warning", "train.py", cwd=repository / "src")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "::error file=src/train.py,line=8,col=19,endLine=8,endColumn=49,title=DL201 softmax-into-cross-entropy::"
        + json.loads(invoke("--format", "json", "train.py", cwd=repository / "src").stdout)[0]["message"],
        "::warning file=src/train.py,line=10,col=2,endLine=10,endColumn=18,title=DL101 missing-zero-grad::"
        "optimizer.step() runs every iteration but gradients are never cleared in this loop; call "
        "optimizer.zero_grad() before backward().",
    ]


def test_github_escapes_what_workflow_commands_would_misread():
    finding = Finding("a,b:c.py", 3, 1, 3, 5, "DL401", "clamp-kills-gradient", "info", "50% done\nnext line")
    text = get_formatter("github")([finding], [], OutputOptions(repository_root=os.getcwd()))
    assert text == ("::notice file=a%2Cb%3Ac.py,line=3,col=1,endLine=3,endColumn=5,"
                    "title=DL401 clamp-kills-gradient::50%25 done%0Anext line\n")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_gitlab_code_quality(repository):
    result = invoke("--format", "gitlab", "--severity", "DL101=warning", "src", cwd=repository)
    issues = json.loads(result.stdout)
    assert [(i["check_name"], i["severity"], i["location"]) for i in issues] == [
        ("DL201", "major", {"path": "src/train.py", "lines": {"begin": 8, "end": 8}}),
        ("DL101", "minor", {"path": "src/train.py", "lines": {"begin": 10, "end": 10}}),
    ]
    assert issues[0]["description"].startswith("DL201 [softmax-into-cross-entropy] Cross-entropy receives")
    fingerprints = [i["fingerprint"] for i in issues]
    assert len(set(fingerprints)) == 2 and all(len(f) == 32 for f in fingerprints)


def test_junit_report(tmp_path):
    write(tmp_path, "train.py", BUGGY)
    write(tmp_path, "clean.py", CLEAN)
    result = invoke("--format", "junit", ".", cwd=tmp_path)
    assert result.returncode == 1
    root = ElementTree.fromstring(result.stdout)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert set(suites) == {"clean.py", "train.py"}
    assert [case.find("failure") for case in suites["clean.py"].findall("testcase")] == [None]
    failures = [case.find("failure") for case in suites["train.py"].findall("testcase")]
    assert [f.get("type") for f in failures] == ["DL201", "DL101"]
    assert failures[1].text.startswith("train.py:10:2: DL101 [missing-zero-grad] ")
    clean_run = ElementTree.fromstring(invoke("--format", "junit", "clean.py", cwd=tmp_path).stdout)
    assert (clean_run.get("tests"), clean_run.get("failures")) == ("1", "0")
