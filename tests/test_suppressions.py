"""Suppression comments, end to end through the command line: what they silence and what they leave."""

import json
import textwrap

from dllint.suppressions import parse_suppressions
from tests.conftest import run_dllint
from tests.invoke import invoke

HEADER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    criterion = nn.CrossEntropyLoss()
    """)


def loop(name, step_comment="", loss_lines=None):
    """A training loop without zero_grad (DL101 on the step line), optionally softmax into the loss."""
    loss = loss_lines or ["loss = criterion(model(x), y)"]
    body = "\n".join(f"        {line}" for line in loss)
    comment = f"  {step_comment}" if step_comment else ""
    return (f"\n\ndef {name}(model, optimizer, loader):\n    for x, y in loader:\n{body}\n"
            f"        loss.backward()\n        optimizer.step(){comment}\n")


def findings(result):
    return sorted((f["path"], f["line"], f["code"]) for f in json.loads(result.stdout))


def line_of(text, needle, start=0):
    lines = text.splitlines()
    for number in range(start, len(lines)):
        if needle in lines[number]:
            return number + 1
    raise AssertionError(needle)


def test_line_suppressions_in_every_spelling(tmp_path):
    source = HEADER + "".join([
        loop("by_code", "# dllint: ignore[DL101]"),
        loop("by_list", "# dllint: ignore[DL201, DL101]"),
        loop("bare", "# dllint: ignore"),
        loop("noqa_code", "# noqa: DL101"),
        loop("noqa_upper_no_space", "# NOQA:DL101"),
        loop("bare_noqa", "# noqa"),
        loop("after_other_comment", "# type: ignore  # dllint: ignore[DL101]"),
        loop("other_tool_code", "# noqa: E501"),
        loop("wrong_code", "# dllint: ignore[DL201]"),
        loop("plain"),
    ])
    (tmp_path / "train.py").write_text(source)
    result = run_dllint("--format", "json", "train.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    reported = findings(result)
    # Only the loops whose comment does not name DL101 for dllint keep their finding.
    expected_lines = [line_of(source, "optimizer.step()", line_of(source, f"def {name}("))
                      for name in ("other_tool_code", "wrong_code", "plain")]
    assert reported == [("train.py", line, "DL101") for line in expected_lines]


def test_a_comment_on_the_first_line_covers_the_whole_statement(tmp_path):
    source = HEADER + loop("covered", "# dllint: ignore[DL101]", [
        "loss = criterion(  # dllint: ignore[DL201]",
        "    F.softmax(model(x), dim=1),",
        "    y,",
        ")",
    ]) + loop("only_its_line", "# dllint: ignore[DL101]", [
        "loss = criterion(",
        "    model(x).softmax(dim=1), y,",
        ")  # dllint: ignore[DL201]",
    ])
    (tmp_path / "train.py").write_text(source)
    result = invoke("--format", "json", "train.py", cwd=tmp_path)
    second = line_of(source, "def only_its_line(")
    # A comment on the last line of a statement covers that line only, not the softmax above it.
    assert findings(result) == [("train.py", line_of(source, "softmax(dim=1)", second), "DL201")]


def test_file_level_directives(tmp_path):
    buggy = HEADER + loop("train", loss_lines=["loss = criterion(F.softmax(model(x), dim=1), y)"])
    (tmp_path / "skipped.py").write_text("# dllint: skip-file\n" + buggy)
    (tmp_path / "no_zero_grad_check.py").write_text("# dllint: ignore-file[DL101]\n" + buggy)
    (tmp_path / "broken.py").write_text("# dllint: skip-file\nimport torch\nprint 'python 2'\n")
    (tmp_path / "reported.py").write_text(buggy)
    result = invoke("--format", "json", ".", cwd=tmp_path)
    assert {(path, code) for path, _, code in findings(result)} == {
        ("no_zero_grad_check.py", "DL201"), ("reported.py", "DL101"), ("reported.py", "DL201")}


def test_show_suppressed_lists_what_was_silenced(tmp_path):
    source = HEADER + loop("train", "# noqa: DL101")
    (tmp_path / "train.py").write_text(source)
    step = line_of(source, "optimizer.step()")
    text = invoke("--show-suppressed", "train.py", cwd=tmp_path)
    assert text.returncode == 0
    assert text.stdout.startswith(f"train.py:{step}:9: DL101 [missing-zero-grad] ")
    assert text.stdout.rstrip().endswith(f"(suppressed by `# noqa: DL101` on line {step})")
    assert text.stderr.strip() == "All checks passed (1 file checked; 1 suppressed)."
    data = json.loads(invoke("--format", "json", "--show-suppressed", "train.py", cwd=tmp_path).stdout)
    assert [(d["code"], d["suppressed_by"]) for d in data] == [("DL101", f"`# noqa: DL101` on line {step}")]
    quiet = invoke("train.py", cwd=tmp_path)
    assert quiet.stdout == "" and quiet.stderr.strip() == "All checks passed (1 file checked)."


def test_warn_unused_suppressions_reports_dl998(tmp_path):
    source = HEADER + "".join([
        loop("used", "# dllint: ignore[DL101]"),
        loop("partly_used", "# dllint: ignore[DL101, DL201]"),
        loop("bare_noqa_is_left_alone", "# noqa"),
    ]) + textwrap.dedent("""\


        def predict(model, batch):
            return torch.softmax(model(batch), dim=-1)  # noqa: DL201
        # dllint: ignore-file[DL990]
        """)
    (tmp_path / "train.py").write_text(source)
    (tmp_path / "generated.py").write_text("# dllint: skip-file\nimport torch\nx = 1  # dllint: ignore\n")
    plain = invoke("train.py", "generated.py", cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout == ""
    result = invoke("--format", "json", "--warn-unused-suppressions", ".", cwd=tmp_path)
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert {d["code"] for d in data} == {"DL998"}
    assert all(d["severity"] == "warning" and d["name"] == "unused-suppression" for d in data)
    by_line = {d["line"]: d for d in data}
    partly = line_of(source, "optimizer.step()", line_of(source, "def partly_used("))
    predict = line_of(source, "# noqa: DL201")
    file_level = line_of(source, "ignore-file[DL990]")
    assert sorted(by_line) == [partly, predict, file_level]
    assert by_line[partly]["message"] == (
        "DL201 in `# dllint: ignore[DL101, DL201]` silences nothing: no DL201 finding on this line; "
        "remove DL201 from the comment.")
    assert by_line[partly]["column"] == source.splitlines()[partly - 1].index("#") + 1
    assert by_line[predict]["message"].startswith("`# noqa: DL201` silences nothing")
    assert "DL990 is not a dllint rule" in by_line[file_level]["message"]
    # A code that is not selected in this run may still match in a run that selects it.
    only_dl1 = invoke("--format", "json", "--warn-unused-suppressions", "--select", "DL1", "train.py",
                          cwd=tmp_path)
    assert [d["line"] for d in json.loads(only_dl1.stdout)] == [file_level]
    ignored = invoke("--warn-unused-suppressions", "--ignore", "DL998", "train.py", cwd=tmp_path)
    assert ignored.returncode == 0 and ignored.stdout == ""


def test_comment_markers_inside_strings_are_not_suppressions():
    source = textwrap.dedent('''\
        import torch
        text = "optimizer.step()  # dllint: ignore[DL101]"
        doc = """
        # noqa
        """
        value = 1  # dllint: IGNORE [ dl101 ,DL201 ]
        ''')
    parsed = parse_suppressions(source)
    assert sorted(parsed.by_line) == [6]
    (suppression,) = parsed.by_line[6]
    assert suppression.codes == ("DL101", "DL201") and suppression.column == 12


def test_unused_suppressions_can_themselves_be_kept_on_purpose(tmp_path):
    stale = HEADER + loop("train", "# dllint: ignore[DL101, DL201]")
    (tmp_path / "kept_by_comment.py").write_text("# dllint: ignore-file[DL998]\n" + stale)
    (tmp_path / "kept_by_config.py").write_text(stale)
    (tmp_path / "reported.py").write_text(stale)
    (tmp_path / "pyproject.toml").write_text('[tool.dllint]\nper-file-ignores = { "kept_by_config.py" = ["DL998"] }\n')
    result = invoke("--format", "json", "--warn-unused-suppressions", "--show-suppressed", ".", cwd=tmp_path)
    data = json.loads(result.stdout)
    reported = [(d["path"], d["code"]) for d in data if "suppressed_by" not in d]
    assert reported == [("reported.py", "DL998")]
    kept = {d["path"]: d["suppressed_by"] for d in data if d["code"] == "DL998" and "suppressed_by" in d}
    assert kept == {"kept_by_comment.py": "`# dllint: ignore-file[DL998]` in this file",
                    "kept_by_config.py": "per-file-ignores 'kept_by_config.py'"}
