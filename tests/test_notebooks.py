"""Jupyter notebooks through the command line: cell positions in every format, suppressions in cells,
fixes written back into the JSON byte for byte, directory walks, and notebooks that cannot be linted."""

import json
import os
import shutil

import pytest

from dllint.notebook import mask_ipython, read_notebook
from tests.conftest import FIXTURES, ROOT, run_dllint
from tests.expectations import expected_findings, notebook_cells
from tests.invoke import invoke

NOTEBOOKS = os.path.join(FIXTURES, "notebooks")
CIFAR = os.path.join(NOTEBOOKS, "cifar_training_split_over_cells.ipynb")
GNN = os.path.join(NOTEBOOKS, "gnn_level_heads_plain_list.ipynb")


def _cell_line(path, cell, line):
    return dict((number, text) for number, _, text in notebook_cells(path))[cell].split("\n")[line - 1]


def _notebook(cells, metadata=None):
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                       "source": text.splitlines(True)} if isinstance(text, str) else text for text in cells],
            "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}


def _write(path, document, **dump):
    path.write_text(json.dumps(document, **({"indent": 1} | dump)) + "\n", encoding="utf-8")
    return path


LOOP_CELL = """for x, y in loader:
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


def test_text_output_names_the_cell_and_the_line_within_it():
    result = invoke(CIFAR, "--no-cache", cwd=ROOT)
    assert result.returncode == 1
    shown = [line for line in result.stdout.splitlines() if line]
    expected = sorted(expected_findings(CIFAR), key=lambda e: e[1])
    assert len(shown) == len(expected) == 3
    for (path, (cell, line), code), text in zip(expected, shown):
        # The column of the flagged call, read from the cell itself.
        flagged = {"DL101": "optimizer.step()", "DL201": "model(inputs)", "DL301": "model(inputs"}[code]
        column = _cell_line(CIFAR, cell, line).index(flagged) + 1
        relative = os.path.relpath(CIFAR)
        assert text.startswith(f"{relative}:cell {cell}:{line}:{column}: {code} "), text
    # A message that names another place of the notebook names it by cell too.
    assert "the softmax that model SmallConvNet returns (cell 5, line 11)" in result.stdout


def test_show_source_prints_the_cell_line():
    result = invoke(CIFAR, "--no-cache", "--show-source", "--select", "DL101", cwd=ROOT)
    assert "  9 |         optimizer.step()  # expect: DL101" in result.stdout


def test_json_has_the_cell_and_lines_counted_within_it():
    findings = json.loads(invoke(CIFAR, "--no-cache", "--format", "json", cwd=ROOT).stdout)
    by_code = {f["code"]: f for f in findings}
    assert (by_code["DL101"]["cell"], by_code["DL101"]["line"], by_code["DL101"]["end_line"]) == (9, 9, 9)
    assert by_code["DL301"]["cell"] == by_code["DL301"]["end_cell"] == 11
    edit = by_code["DL101"]["fix"]["edits"][0]
    # The zero_grad() goes in before loss.backward(), line 8 of the training cell.
    assert (edit["cell"], edit["line"]) == (9, 8)
    assert _cell_line(CIFAR, 9, 8).strip() == "loss.backward()"


@pytest.mark.parametrize("output_format", ["sarif", "github", "gitlab", "junit"])
def test_code_host_formats_point_into_the_notebook_file(output_format):
    """SARIF, GitHub, GitLab and JUnit give lines of the .ipynb file itself (what code hosts show):
    the JSON line holding the flagged code, at the flagged column inside that string."""
    result = invoke(CIFAR, "--no-cache", "--format", output_format, "--select", "DL101", cwd=ROOT)
    with open(CIFAR, encoding="utf-8") as handle:
        file_lines = handle.read().split("\n")
    if output_format == "sarif":
        location = json.loads(result.stdout)["runs"][0]["results"][0]["locations"][0]
        region = location["physicalLocation"]["region"]
        line, column = region["startLine"], region["startColumn"]
        assert location["properties"]["cell"] == 9 and location["properties"]["cellLine"] == 9
    elif output_format == "github":
        fields = dict(part.split("=", 1) for part in result.stdout.split("::")[1].split(" ", 1)[1].split(","))
        line, column = int(fields["line"]), int(fields["col"])
        assert "cell 9%3A9%3A9" in fields["title"]
    elif output_format == "gitlab":
        line, column = json.loads(result.stdout)[0]["location"]["lines"]["begin"], None
    else:
        line, column = int(result.stdout.split(' line="')[1].split('"')[0]), None
        assert "at " + os.path.relpath(CIFAR) + ":cell 9:9:9" in result.stdout
    assert '"        optimizer.step()  # expect: DL101\\n",' in file_lines[line - 1]
    if column is not None:
        assert file_lines[line - 1][column - 1:].startswith("optimizer.step()")


def test_fix_writes_back_into_the_notebook_and_changes_nothing_else(tmp_path):
    target = tmp_path / "gnn.ipynb"
    shutil.copy(GNN, target)
    original = target.read_bytes()
    diff = invoke(str(target), "--no-cache", "--diff", cwd=ROOT)
    assert diff.returncode == 1
    fixed = invoke(str(target), "--no-cache", "--fix", cwd=ROOT)
    assert "Fixed 2 problems." in fixed.stderr and fixed.returncode == 0, fixed.stdout + fixed.stderr
    expected = original.replace(b"self.heads = [nn.Linear(dim, 1) for _ in range(levels)]",
                                b"self.heads = nn.ModuleList([nn.Linear(dim, 1) for _ in range(levels)])") \
        .replace(b"total_loss += loss  #", b"total_loss += loss.item()  #")
    assert expected != original
    assert target.read_bytes() == expected
    # --diff showed exactly those lines of the file.
    removed = [line[1:] for line in diff.stdout.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    old_lines, new_lines = original.decode().split("\n"), expected.decode().split("\n")
    assert [line for line in old_lines if line not in new_lines] == removed
    assert [line for line in new_lines if line not in old_lines] == added


def test_fix_keeps_the_files_own_style(tmp_path):
    """CRLF, a BOM, two-space indentation, key order, ASCII escapes and no final newline all stay; a
    new line inserted into a cell follows the list's layout."""
    document = _notebook(["import torch\n\nmodel = torch.nn.Linear(2, 1)  # \u00e9t\u00e9\n"
                          "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n", LOOP_CELL])
    document["metadata"] = {"z_last": 1, "a_first": 2}
    text = "\ufeff" + json.dumps(document, indent=2, ensure_ascii=True).replace("\n", "\r\n")
    target = tmp_path / "styled.ipynb"
    target.write_bytes(text.encode("utf-8"))
    result = invoke(str(target), "--no-cache", "--fix", "--unsafe-fixes", cwd=ROOT)
    assert "Fixed 1 problem." in result.stderr, result.stdout + result.stderr
    written = target.read_bytes().decode("utf-8")
    inserted = '        "    optimizer.zero_grad()\\n",\r\n'
    # The one new element of the loop cell, and nothing else, is new.
    assert written.replace(inserted, "", 1) == text
    assert written.index(inserted) < written.index('"    loss.backward()\\n"')
    assert "\\u00e9t\\u00e9" in written
    assert json.loads(written[1:])["cells"][1]["source"][2] == "    optimizer.zero_grad()\n"


def test_fix_next_to_magics_maps_offsets_back_to_the_cell_as_written(tmp_path):
    cell = "%time setup()\n!nvidia-smi\ntotal = 0.0\nfor x, y in loader:\n    !echo step\n" \
           "    loss = F.mse_loss(model(x), y)\n    loss.backward()\n    optimizer.step()\n    total += loss\n"
    target = _write(tmp_path / "magics.ipynb", _notebook(["import torch\nimport torch.nn.functional as F\n", cell]))
    result = invoke(str(target), "--no-cache", "--fix", "--unsafe-fixes", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    source = "".join(json.loads(target.read_text())["cells"][1]["source"])
    assert source == "%time setup()\n!nvidia-smi\ntotal = 0.0\nfor x, y in loader:\n    !echo step\n" \
        "    loss = F.mse_loss(model(x), y)\n    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n" \
        "    total += loss.item()\n"


def test_suppression_comments_in_cells(tmp_path):
    cells = ["import torch\n", LOOP_CELL.replace("optimizer.step()", "optimizer.step()  # dllint: ignore[DL101]")]
    target = _write(tmp_path / "quiet.ipynb", _notebook(cells))
    result = invoke(str(target), "--no-cache", "--show-suppressed", cwd=ROOT)
    assert result.returncode == 0
    assert "quiet.ipynb:cell 2:4:5: DL101 [missing-zero-grad]" in result.stdout
    assert "(suppressed by `# dllint: ignore[DL101]` on line" in result.stdout
    skipped = _write(tmp_path / "skipped.ipynb", _notebook(["# dllint: skip-file\nimport torch\n", LOOP_CELL]))
    assert invoke(str(skipped), "--no-cache", cwd=ROOT).returncode == 0
    loud = _write(tmp_path / "loud.ipynb", _notebook(["import torch\n", LOOP_CELL]))
    assert "loud.ipynb:cell 2:4:5: DL101" in invoke(str(loud), "--no-cache", cwd=ROOT).stdout


def test_directory_walk_lints_notebooks_beside_python_files(tmp_path):
    (tmp_path / "train.py").write_text("import torch\n" + LOOP_CELL)
    _write(tmp_path / "train.ipynb", _notebook(["import torch\n", LOOP_CELL]))
    _write(tmp_path / "notes.ipynb", {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# torch"]}],
                                      "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    result = invoke(str(tmp_path), "--no-cache", cwd=ROOT)
    assert "train.ipynb:cell 2:4:5: DL101" in result.stdout
    assert "train.py:5:5: DL101" in result.stdout
    assert "(3 files checked)" in result.stderr


def test_syntax_error_in_a_cell_is_placed_in_the_cell(tmp_path):
    target = _write(tmp_path / "broken.ipynb", _notebook(["import torch\n", "x = (1,\n", "y = 2\n"]))
    result = invoke(str(target), "--no-cache", cwd=ROOT)
    assert result.returncode == 1
    assert "broken.ipynb:cell 2:" in result.stdout and "DL000" in result.stdout


@pytest.mark.parametrize("content, message", [
    ('{"cells": [', "notebook is not valid JSON"),
    ('{"metadata": {}, "nbformat": 4}', "not a Jupyter notebook"),
    ('{"worksheets": [], "nbformat": 3}', "nbformat 3"),
    ('{"cells": [{"cell_type": "code", "source": 7}], "nbformat": 4}', "neither a string nor a list"),
    ("", "notebook is not valid JSON"),
])
def test_a_notebook_that_cannot_be_read_is_reported_not_passed(tmp_path, content, message):
    target = tmp_path / "bad.ipynb"
    target.write_text(content)
    result = invoke(str(target), "--no-cache", cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DL000" in result.stdout and message in result.stdout
    assert "All checks passed" not in result.stderr
    assert "Traceback" not in result.stderr


# The R torch package's training loop: parsed as Python it would be a syntax error (DL000).
R_TRAINING_CELL = """library(torch)
model <- nn_linear(4, 2)
optimizer <- optim_sgd(model$parameters, lr = 0.1)
for (epoch in 1:10) {
  loss <- nnf_mse_loss(model(x), y)
  loss$backward()
  optimizer$step()
}
"""
JULIA_TRAINING_CELL = """using Flux
model = Dense(4 => 2)
for epoch in 1:10
    Flux.train!(loss, Flux.params(model), data, Descent(0.1))
end
"""


def test_a_notebook_in_another_language_is_skipped_never_passed(tmp_path):
    _write(tmp_path / "analysis.ipynb", _notebook([R_TRAINING_CELL], {"kernelspec": {"language": "R", "name": "ir"}}))
    _write(tmp_path / "flux.ipynb", _notebook([JULIA_TRAINING_CELL], {"language_info": {"name": "julia"}}))
    _write(tmp_path / "train.ipynb", _notebook(["import torch\n", LOOP_CELL],
                                               {"kernelspec": {"language": "python", "name": "python3"}}))
    alone = invoke("analysis.ipynb", "--no-cache", cwd=tmp_path)
    assert alone.returncode == 0 and alone.stdout == ""
    assert "All checks passed" not in alone.stderr
    assert alone.stderr.splitlines() == ["dllint: warning: analysis.ipynb is a notebook in R, not Python: skipped",
                                         "No problems found (0 files checked; 1 file skipped: not Python)."]
    # In a directory walk the Python notebook is linted, the other two are skipped (not parsed: no DL000).
    walk = invoke(".", "--no-cache", cwd=tmp_path)
    assert walk.returncode == 1
    assert [line.split(": ")[1].split()[0] for line in walk.stdout.splitlines()] == ["DL101"]
    assert walk.stdout.startswith("train.ipynb:cell 2:")
    assert "flux.ipynb is a notebook in julia, not Python: skipped" in walk.stderr
    assert "Found 1 problem in 1 file (1 file checked; 2 files skipped: not Python).\n" in walk.stderr
    # Reports that list files show it as skipped, as they show a file too large to analyse.
    junit = invoke("--format", "junit", "--no-cache", "analysis.ipynb", cwd=tmp_path).stdout
    assert 'skipped="1"' in junit and '<skipped message="a notebook in R, not Python: not analysed" />' in junit
    sarif = json.loads(invoke("--format", "sarif", "--no-cache", "analysis.ipynb", cwd=tmp_path).stdout)
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == ["analysis.ipynb: a notebook in R, not Python: not analysed"]


def test_notebook_on_stdin_with_a_notebook_file_name():
    document = json.dumps(_notebook(["import torch\n", LOOP_CELL]))
    result = run_dllint("-", "--stdin-filename", "pipe.ipynb", input=document)
    assert "pipe.ipynb:cell 2:4:5: DL101" in result.stdout


@pytest.mark.parametrize("line, masked", [
    ("%matplotlib inline", True), ("!pip install torch", True), ("model?", True), ("??model", True),
    ("files = !ls", True), ("a, b = %sx ls", True), ("/print hello", True), ("x != y", False),
    ("a %= 3", False), ("print('why?')", False), ("x = 1  # why?", False), ("!= 3", False),
])
def test_ipython_lines_are_masked_and_python_is_kept(line, masked):
    result, masked_lines = mask_ipython(line + "\n")
    assert (masked_lines == [0]) is masked
    assert (result != line + "\n") is masked


def test_masking_knows_strings_brackets_and_cell_magics():
    text = 'doc = """\n%not a magic\n!nor this\n"""\nx = (1\n     % 2)\nif ready:\n    !echo go\n%time \\\n  f()\n'
    masked, lines = mask_ipython(text)
    assert lines == [7, 8, 9]
    assert masked.splitlines()[7] == "    pass"
    compile(masked, "<cell>", "exec")
    assert mask_ipython("%%bash\nif [ -d x ]; then echo; fi\n")[1] == [0, 1]
    assert mask_ipython("%%time\nfor i in range(3):\n    pass\n")[1] == [0]


def test_an_edit_over_a_masked_line_is_not_applied():
    notebook = read_notebook(json.dumps(_notebook(["a = 1\n!ls\nb = 2\n"])))
    start = notebook.code.index("pass")
    raw, applied = notebook.apply_edits([(start - 2, start + 2, "xx")])
    assert applied == 0 and raw == notebook.raw
    raw, applied = notebook.apply_edits([(notebook.code.index("b = 2"), notebook.code.index("b = 2") + 1, "c")])
    assert applied == 1 and json.loads(raw)["cells"][0]["source"] == ["a = 1\n", "!ls\n", "c = 2\n"]
