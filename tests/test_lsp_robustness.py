"""The language server stays correct and responsive: UTF-16 positions, large buffers linted off the
message loop, and an error reply to requests after shutdown."""

import os

import pytest

pytest.importorskip("pygls", reason="the language server needs pygls (pip install 'dllint[lsp]')")

from tests.test_lsp import BUGGY, Client  # noqa: E402


@pytest.fixture
def client(tmp_path):
    lsp = Client(tmp_path)
    lsp.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
    lsp.send("initialized", {})
    yield lsp
    lsp.close()


def _open(client, uri, text):
    client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                          "text": text}})


def test_positions_are_utf16_as_announced(client, tmp_path):
    """The protocol's default unit is UTF-16: an emoji before the finding counts twice."""
    line = '        note = "\U0001F525 hot"; optimizer.step()'
    text = BUGGY.replace("        optimizer.step()", line)
    uri = (tmp_path / "emoji.py").as_uri()
    _open(client, uri, text)
    (diagnostic,) = client.diagnostics(uri)
    prefix = line[:line.index("optimizer.step()")]
    assert diagnostic["range"]["start"] == {"line": 6, "character": len(prefix.encode("utf-16-le")) // 2}
    assert diagnostic["range"]["start"]["character"] == len(prefix) + 1
    actions = client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}})
    ignore = next(a for a in actions if a["title"] == "Ignore DL101 on this line")
    end = ignore["edit"]["changes"][uri][0]["range"]["start"]
    assert end == {"line": 6, "character": len(line.encode("utf-16-le")) // 2}


def test_a_large_buffer_does_not_stop_the_server_answering(client, tmp_path):
    # Attention scores from torch.bmm are 3-D: softmax without dim is reported (with a fix) in every function.
    functions = "".join(f"def head_{i}(q, k):\n    return F.softmax(torch.bmm(q, k) / {i + 1})\n\n\n"
                        for i in range(1500))
    big = (tmp_path / "heads.py").as_uri()
    _open(client, big, "import torch\nimport torch.nn.functional as F\n\n\n" + functions)
    identifier = client.send("textDocument/codeAction", {
        "textDocument": {"uri": big}, "range": {"start": {"line": 0, "character": 0},
                                                "end": {"line": 0, "character": 0}},
        "context": {"diagnostics": []}}, request=True)
    first = client.wait_for(lambda m: m.get("id") == identifier or
                            m.get("method") == "textDocument/publishDiagnostics", timeout=120)
    assert first.get("id") == identifier, "the answer waited for the lint of the large buffer"
    diagnostics = client.diagnostics(big)
    assert len(diagnostics) == 1500


def test_requests_after_shutdown_get_an_error(tmp_path):
    client = Client(tmp_path)
    try:
        client.request("initialize", {"processId": os.getpid(), "rootUri": tmp_path.as_uri(), "capabilities": {}})
        assert client.request("shutdown", None) is None
        identifier = client.send("textDocument/codeAction", {
            "textDocument": {"uri": (tmp_path / "x.py").as_uri()},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": []}}, request=True)
        reply = client.wait_for(lambda m: m.get("id") == identifier)
        assert reply["error"]["code"] == -32600
        client.send("exit", None)
        assert client.process.wait(timeout=10) == 0
    finally:
        if client.process.poll() is None:
            client.process.kill()


@pytest.mark.parametrize("garbage", [b"Content-Length: abc\r\n\r\n{\"jsonrpc\": \"2.0\", \"method\": \"x\"}",
                                     b"Content-Length: 5\r\n\r\n{\"jsonrpc\": \"2.0\"}",
                                     b"hello\r\n\r\n"])
def test_the_server_answers_after_a_malformed_message(client, tmp_path, garbage):
    client.process.stdin.write(garbage)
    client.process.stdin.flush()
    uri = (tmp_path / "train.py").as_uri()
    _open(client, uri, BUGGY)
    assert [d["code"] for d in client.diagnostics(uri)] == ["DL101"]
    assert client.request("textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": {"line": 6, "character": 0},
                                                "end": {"line": 6, "character": 0}},
        "context": {"diagnostics": []}})
