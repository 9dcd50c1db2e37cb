"""Valid Python that libcst's parser rejects is still linted (not DL000), and a file's many findings
do not make a run quadratic."""

import json
import sys

import pytest

from dllint import lines as lines_module
from dllint.engine import RECURSION_LIMIT
from dllint.runner import lint_paths
from tests.conftest import run_dllint

LOOP = "for x, y in loader:\n    loss = model(x).sum()\n    loss.backward()\n    optimizer.step()\n"


def _findings(tmp_path, name, source, *flags):
    path = tmp_path / name
    path.write_bytes(source.encode("utf-8"))
    # CPython accepts it (under the recursion limit dllint lints with): dllint must too.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        compile(source, name, "exec")
    finally:
        sys.setrecursionlimit(limit)
    result = run_dllint(str(path), "--no-cache", "--format", "json", *flags)
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name, source", [
    ("annotated.py", "import torch\n(x): int = 1\n(self_check): 'torch.Tensor'\n"),
    ("form_feed.py", "import torch\nclass Net(torch.nn.Module):\n\f    def forward(self, x):\n        return x\n"),
    ("strings.py", "import torch\nMESSAGE = (" + " ".join(['"ab"'] * 4000) + ")\n"),
    ("strings_lines.py", "import torch\nMESSAGE = (\n" + "".join(f'    "line {i}\\n"\n' for i in range(3500)) + ")\n"),
])
def test_valid_code_libcst_rejects_is_linted(tmp_path, name, source):
    findings = _findings(tmp_path, name, source + LOOP)
    assert [(f["code"], f["line"]) for f in findings] == [("DL101", source.count("\n") + 4)]


def test_columns_on_a_line_with_a_form_feed_are_the_files_own(tmp_path):
    source = "import torch\nimport torch.nn.functional as F\nif True:\n\f    for row in F.softmax(torch.bmm(x, x)):\n" \
             "        print(row)\n"
    (finding,) = _findings(tmp_path, "shifted.py", source)
    line = source.split("\n")[3]
    assert finding["code"] == "DL206" and finding["line"] == 4
    assert finding["column"] == line.index("F.softmax") + 1
    assert finding["end_column"] == line.index(":") + 1
    # A fix computed on the rewritten line would not fit the file: it is not offered.
    assert finding["fix"] is None


def test_many_fixes_in_one_file_do_not_rescan_the_file_per_fix(tmp_path, monkeypatch):
    """Each fix and each shown finding used to split the whole file again: quadratic in findings
    (8,000 small functions took minutes)."""
    # Attention scores from torch.bmm are 3-D: softmax without dim is reported (with a fix) in every function.
    functions = "".join(f"def head_{i}(q, k):\n    return F.softmax(torch.bmm(q, k) / {i + 1})\n\n\n"
                        for i in range(400))
    path = tmp_path / "heads.py"
    path.write_text("import torch\nimport torch.nn.functional as F\n\n\n" + functions)
    scans = []
    pattern = lines_module._LINE_BREAK

    class CountingPattern:
        def finditer(self, text):
            if len(text) > 10_000:
                scans.append(len(text))
            return pattern.finditer(text)

    monkeypatch.setattr(lines_module, "_LINE_BREAK", CountingPattern())
    result = lint_paths([str(path)], ["DL206"])
    assert len(result.findings) == 400 and all(f.fix for f in result.findings)
    assert len(scans) < 10, f"the file was scanned for line breaks {len(scans)} times"

    from dllint.output import OutputOptions, get_formatter
    from dllint import registry

    source = path.read_text()
    options = OutputOptions(show_source=True, sources={f.path: source for f in result.findings})
    scans.clear()
    for name in ("text", "sarif", "gitlab"):
        get_formatter(name)(result.findings, [registry.get_rule("DL206").info], options)
    assert len(scans) < 10


@pytest.mark.parametrize("expression", [
    "+".join(["1"] * 7000), "f" + "()" * 5000, "f" + ".a" * 5000, "-" * 3000 + "1", "not " * 3000 + "x",
])
def test_nesting_too_deep_to_analyse_is_reported_at_once(tmp_path, expression):
    """libcst and the analysis recurse per level: such files used to crash (exit 139) or run for
    minutes before ending in DL000; CPython's tree tells at once."""
    (finding,) = _findings(tmp_path, "deep.py", "import torch\nx = " + expression + "\n")
    assert (finding["code"], finding["line"], finding["column"]) == ("DL000", 2, 5)
    assert "too deeply nested to analyse" in finding["message"]


def test_long_but_shallow_expressions_are_analysed(tmp_path):
    table = "WEIGHTS = [" + ", ".join(f"{i}.5" for i in range(5000)) + "]\n"
    chain = "total = " + " + ".join(f"w{i}" for i in range(400)) + "\n"
    findings = _findings(tmp_path, "table.py", "import torch\n" + table + chain + LOOP)
    assert [f["code"] for f in findings] == ["DL101"]


def test_origins_through_callers_are_worked_out_once_per_call_site(tmp_path, monkeypatch):
    """A wrapper class whose methods build new wrappers from `self._inner` (torch's storage.py has 45
    such uses): every use asks where `self._inner` comes from, and the answer runs through the
    constructor's parameter to the arguments of every call site. Each query used to bind those
    arguments again (quadratic: 1,000 queries of torch's sources took a minute); they are bound once."""
    from dllint.model import origins

    methods = "".join(f"    def op_{i}(self):\n        return Storage(wrap=self._inner.op_{i}(), device=self._inner.device)\n\n"
                      for i in range(120))
    path = tmp_path / "storage.py"
    path.write_text("import torch\n\n\nclass Storage:\n    def __init__(self, *args, wrap=None, device=None):\n"
                    "        if wrap is not None:\n            self._inner = wrap\n        else:\n"
                    "            self._inner = torch.empty(0, device=device)\n\n" + methods + "\n" + LOOP)
    bound = []
    real = origins.bound_argument

    def counting(*args, **kwargs):
        bound.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(origins, "bound_argument", counting)
    result = lint_paths([str(path)], ["DL101"])
    assert [(f.code, f.line) for f in result.findings] == [("DL101", path.read_text().count("\n"))]
    assert len(bound) <= 120, f"{len(bound)} arguments bound for 120 call sites"
