"""Benchmark: what one edit of an open document costs the language server inside a large project.

Usage: python bench/lsp_change.py [--changes N] [--file RELATIVE] [--as NAME] DIRECTORY

Copies DIRECTORY into a temporary project (as a package named NAME, default its own name, beside an
empty pyproject.toml, so that `import NAME.x` resolves inside it), starts `dllint server` on stdio
there with no debounce, opens one file (by default an analysed file near the middle that no other
file imports), then sends N edits of its buffer one after the other, each waiting for the
diagnostics of that version. Reports the median and spread per edit of the server's CPU seconds
(comparable on a loaded machine) and of wall seconds (not), and the first lint (cold index).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

SERVER = "import dllint.lsp.server as s; s.DEBOUNCE_SECONDS = 0.0; s.main()"


class StdioClient:
    def __init__(self, cwd: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", SERVER], cwd=cwd, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
        self.next_id = 0

    def send(self, method, params, request=False):
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return message.get("id")

    def receive(self):
        stream, length = self.process.stdout, None
        while True:
            line = stream.readline()
            if not line:
                raise RuntimeError("the server exited")
            if line in (b"\r\n", b"\n"):
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return json.loads(stream.read(length))

    def wait_for(self, predicate):
        while True:
            message = self.receive()
            if predicate(message):
                return message

    def cpu_seconds(self) -> float:
        """The server's user + system CPU time so far (from /proc)."""
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        identifier = self.send("shutdown", None, request=True)
        self.wait_for(lambda m: m.get("id") == identifier)
        self.send("exit", None)
        self.process.wait(timeout=30)


def diagnostics_of(uri: str, version: int):
    return lambda m: (m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
                      and m["params"].get("version") == version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--file", help="the document to edit, relative to DIRECTORY")
    parser.add_argument("--as", dest="name", help="the package name of the copy (default: the folder's name)")
    arguments = parser.parse_args()

    source = os.path.abspath(arguments.directory)
    work = tempfile.mkdtemp(prefix="dllint-lsp-bench-")
    try:
        project = os.path.join(work, arguments.name or os.path.basename(source))
        shutil.copytree(source, project, ignore=shutil.ignore_patterns("__pycache__", ".dllint_cache"))
        open(os.path.join(work, "pyproject.toml"), "w").close()
        if arguments.file:
            path = os.path.join(project, arguments.file)
        else:
            from bench import leaf_file, python_files

            path = leaf_file(work, python_files([project], 0))
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        uri = "file://" + os.path.abspath(path)
        client = StdioClient(work)
        client.send("initialize", {"processId": os.getpid(), "rootUri": "file://" + work, "capabilities": {}},
                    request=True)
        client.wait_for(lambda m: "result" in m)
        client.send("initialized", {})
        cpu, wall = client.cpu_seconds(), time.perf_counter()
        client.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                              "text": text}})
        client.wait_for(diagnostics_of(uri, 1))
        first = (client.cpu_seconds() - cpu, time.perf_counter() - wall)
        cpu_times, wall_times = [], []
        for version in range(2, arguments.changes + 2):
            text += f"\n# edit {version}\n"
            cpu, wall = client.cpu_seconds(), time.perf_counter()
            client.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                   "contentChanges": [{"text": text}]})
            client.wait_for(diagnostics_of(uri, version))
            cpu_times.append(client.cpu_seconds() - cpu)
            wall_times.append(time.perf_counter() - wall)
        client.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sum(name.endswith((".py", ".ipynb")) for _, _, names in os.walk(source) for name in names)
    print(f"project: {source} ({files} files), document: {os.path.relpath(path, project)}")
    print(f"first lint (open, cold index): {first[0]:.2f} s CPU, {first[1]:.2f} s wall")
    for label, times in (("CPU", cpu_times), ("wall", wall_times)):
        print(f"per change, {label} s over {len(times)} edits: median {statistics.median(times):.3f}, "
              f"min {min(times):.3f}, max {max(times):.3f}")


if __name__ == "__main__":
    main()
