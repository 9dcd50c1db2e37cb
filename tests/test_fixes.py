"""Every automatic fix: the result parses, the finding is gone, nothing else changes, a second run is a no-op."""

import ast
import json
import textwrap

import pytest

from tests.invoke import invoke

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"

CASES = {
    "DL303": ("safe", """\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(F.dropout(x, 0.5))
        """, "F.dropout(x, 0.5, training=self.training)"),
    "DL403": ("safe", """\
        def freeze(model):
            for p in model.parameters():
                p.require_grad = False
        """, "p.requires_grad = False"),
    "DL501": ("safe", """\
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = [nn.Linear(4, 4) for _ in range(3)]

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
        """, "self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])"),
    "DL505": ("safe", """\
        def evaluate(model, batches):
            model.eval()
            model.register_forward_hook(lambda module, inputs, output: print(output.shape))
            with torch.no_grad():
                return [model.forward(x) for x in batches]
        """, "[model(x) for x in batches]"),
    "DL206": ("unsafe", """\
        def attend(queries, keys):
            scores = torch.bmm(queries, keys.transpose(1, 2))
            return F.softmax(scores)
        """, "F.softmax(scores, dim=-1)"),
    "DL201": ("unsafe", """\
        def train(model, loader, optimizer):
            criterion = nn.CrossEntropyLoss()
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(F.softmax(model(x), dim=1), y)
                loss.backward()
                optimizer.step()
        """, "loss = criterion(model(x), y)"),
    "DL202": ("unsafe", """\
        def train(model, loader, optimizer):
            criterion = nn.BCEWithLogitsLoss()
            for x, y in loader:
                optimizer.zero_grad()
                probs = torch.sigmoid(model(x))
                loss = criterion(probs, y)
                loss.backward()
                optimizer.step()
        """, "probs = model(x)"),
    "DL207": ("unsafe", """\
        def train(model, loader, optimizer):
            criterion = nn.CrossEntropyLoss()
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(torch.sigmoid(model(x)), y)
                loss.backward()
                optimizer.step()
        """, "loss = criterion(model(x), y)"),
    "DL101": ("unsafe", """\
        def train(model, loader, optimizer):
            for x, y in loader:
                # forward and backward
                loss = F.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
        """, "        optimizer.zero_grad()\n        loss.backward()"),
    "DL104": ("safe", """\
        def train(model, loader, optimizer):
            total = 0.0
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                optimizer.step()
                total += loss
            print(f"mean loss {total / len(loader):.4f}")
        """, "total += loss.item()"),
}
# Present in every case and must survive every fix untouched.
BYSTANDER = "\n\ndef bystander(m):\n    return m.forward(torch.zeros(1))\n"


def _findings(path, cwd):
    result = invoke("--format", "json", "--no-cache", path, cwd=cwd)
    return json.loads(result.stdout)


@pytest.mark.parametrize("code", sorted(CASES))
def test_fix_removes_the_finding_and_nothing_else(code, tmp_path):
    applicability, body, expected = CASES[code]
    path = tmp_path / "train.py"
    original = HEADER + textwrap.dedent(body) + BYSTANDER
    path.write_text(original)
    before = _findings("train.py", tmp_path)
    target = [f for f in before if f["code"] == code]
    assert len(target) == 1, before
    fix = target[0]["fix"]
    assert fix["applicability"] == applicability and fix["message"]
    assert all({"line", "column", "end_line", "end_column", "content"} <= set(e) for e in fix["edits"])

    if applicability == "unsafe":
        invoke("--fix", "--no-cache", "--select", code, "train.py", cwd=tmp_path)
        assert path.read_text() == original, "an unsafe fix was applied without --unsafe-fixes"
    flags = ["--fix", "--unsafe-fixes"] if applicability == "unsafe" else ["--fix"]
    invoke(*flags, "--no-cache", "--select", code, "train.py", cwd=tmp_path)
    fixed = path.read_text()
    ast.parse(fixed)
    assert expected in fixed
    assert fixed.endswith(BYSTANDER)  # bytes outside the edit are untouched
    after = _findings("train.py", tmp_path)
    assert not [f for f in after if f["code"] == code]
    strip = lambda found: sorted((f["code"], f["message"]) for f in found if f["code"] != code)  # noqa: E731
    assert strip(after) == strip(before)

    again = invoke(*flags, "--no-cache", "--select", code, "train.py", cwd=tmp_path)
    assert path.read_text() == fixed
    assert "Fixed 0 problems." in again.stderr


def test_dl303_fix_is_unsafe_where_a_comment_explains_the_dropout(tmp_path):
    # Monte Carlo dropout kept on at inference on purpose: switching it off changes what the model does.
    call = "                return self.fc(F.dropout(x, 0.5))"
    body = CASES["DL303"][1].replace(call, "                # dropout stays on at test time: MC-dropout uncertainty\n" + call)
    assert body != CASES["DL303"][1]
    path = tmp_path / "train.py"
    original = HEADER + textwrap.dedent(body)
    path.write_text(original)
    found = [f for f in _findings("train.py", tmp_path) if f["code"] == "DL303"]
    assert len(found) == 1 and found[0]["fix"]["applicability"] == "unsafe"
    invoke("--fix", "--no-cache", "--select", "DL303", "train.py", cwd=tmp_path)
    assert path.read_text() == original


@pytest.mark.parametrize("use", ["return total", "print(total.item())", "log_metric(total)"])
def test_dl104_fix_is_unsafe_where_the_total_is_still_used_as_a_tensor(use, tmp_path):
    # `total.item()` on a float fails, and a caller or a project function may expect a tensor.
    body = CASES["DL104"][1].replace('print(f"mean loss {total / len(loader):.4f}")', use)
    path = tmp_path / "train.py"
    original = HEADER + textwrap.dedent(body)
    path.write_text(original)
    found = [f for f in _findings("train.py", tmp_path) if f["code"] == "DL104"]
    assert len(found) == 1 and found[0]["fix"]["applicability"] == "unsafe"
    invoke("--fix", "--no-cache", "--select", "DL104", "train.py", cwd=tmp_path)
    assert path.read_text() == original


def test_diff_prints_changes_and_writes_nothing(tmp_path):
    path = tmp_path / "train.py"
    original = HEADER + textwrap.dedent(CASES["DL104"][1])
    path.write_text(original)
    result = invoke("--diff", "--no-cache", "train.py", cwd=tmp_path)
    assert result.returncode == 1
    assert "-        total += loss\n+        total += loss.item()" in result.stdout
    assert path.read_text() == original
    path.write_text(HEADER + "x = torch.zeros(1)\n")
    clean = invoke("--diff", "--no-cache", "train.py", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout == ""


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
def test_fixes_land_in_place_whatever_the_line_endings(newline, tmp_path):
    # Old Mac ("\r") endings once put every edit on the wrong line (and crashed the lint).
    applicability, body, expected = CASES["DL303"]
    original = (HEADER + textwrap.dedent(body) + BYSTANDER).replace("\n", newline)
    path = tmp_path / "train.py"
    path.write_bytes(original.encode())
    result = invoke("--fix", "--no-cache", "--select", "DL303", "train.py", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    fixed = path.read_bytes().decode()
    assert fixed == original.replace("F.dropout(x, 0.5)", expected)


def test_edit_positions_count_every_python_line_break():
    from dllint.fixes import _line_column
    from dllint.lines import line_starts

    for text in ("ab\rcd\r\nef\x0cg\nh", "ab\rcd\r\nef\x0cg\nh\n", "", "x"):
        starts = line_starts(text)
        for offset in range(len(text) + 1):
            before = text[:offset].replace("\r\n", "\n").replace("\r", "\n")
            expected = (before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)
            if "\r\n" in text and text.find("\r\n") + 1 == offset:
                continue  # between the two characters of one line break: not a position
            assert _line_column(text, starts, offset) == expected, (text, offset)
