"""Benchmark: dllint against the bare libcst parse of the same files.

Usage: python bench/bench.py [--limit N] [--jobs N] [DIRECTORY ...]

Without directories, the corpus is the installed torch package's Python sources (found
without importing torch) plus the project's fixtures. Measures, on the same files:
(a) read + libcst.parse_module only, (b) parse + the facts dllint collects, (c) dllint cold
with one job and with all cores, (d) dllint warm (cache hit), (e) warm after touching one file,
(f)-(h) one file named inside the corpus, as an editor or a pre-commit hook names it: warm, after
editing it (the rest of the project known from the index), and with no cache at all.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def torch_sources():
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def python_files(directories, limit):
    files = []
    for directory in directories:
        for folder, subdirs, names in os.walk(directory):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            files.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))
    return files[:limit] if limit else files


def copy_corpus(files, destination):
    """Copy the corpus so that the cache and the touched file never alter the originals."""
    common = os.path.commonpath([os.path.abspath(f) for f in files])
    for path in files:
        target = os.path.join(destination, os.path.relpath(os.path.abspath(path), common))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(path, target)
    return destination


def measure_in_process(function):
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - start_wall, time.process_time() - start_cpu


def bare_parse(files):
    import libcst

    def run():
        gc.disable()
        try:
            for path in files:
                with open(path, "rb") as handle:
                    data = handle.read()
                try:
                    libcst.parse_module(data.decode("utf-8"))
                except Exception:
                    pass
        finally:
            gc.enable()
    return measure_in_process(run)


def parse_and_facts(files):
    import libcst

    from dllint.model.builder import build_file_facts

    def run():
        gc.disable()
        try:
            for path in files:
                with open(path, "rb") as handle:
                    source = handle.read().decode("utf-8", "replace")
                try:
                    tree = libcst.parse_module(source)
                except Exception:
                    continue
                build_file_facts(path, "m", source, tree)
        finally:
            gc.enable()
    return measure_in_process(run)


def _tree_rss_kb(root_pid):
    """Memory of a process and all its descendants (workers count too), from /proc: proportional set
    size, so that pages a forked worker shares with its parent are counted once."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        for name, field in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
            try:
                with open(name) as handle:
                    total += next(int(line.split()[1]) for line in handle if line.startswith(field))
                break
            except (OSError, StopIteration):
                continue
    return total


def run_dllint(corpus, *flags, target=None):
    """Wall and CPU seconds of one dllint run (over the corpus, or over `target` inside it), and its
    peak memory summed over all its processes."""
    import resource

    command = [sys.executable, "-m", "dllint", target or corpus, *flags]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=os.path.dirname(corpus), env={**os.environ, "PYTHONPATH": ROOT})
    peak_kb = 0
    while True:
        if os.path.isdir("/proc"):
            peak_kb = max(peak_kb, _tree_rss_kb(process.pid))
        try:
            process.wait(timeout=0.1)  # returns the moment dllint exits, so wall time is not rounded up
            break
        except subprocess.TimeoutExpired:
            continue
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if process.returncode not in (0, 1):
        raise SystemExit(f"dllint failed with exit code {process.returncode}")
    # Without /proc, fall back to the largest single process.
    return wall, cpu, (peak_kb or after.ru_maxrss) / 1024


def leaf_file(corpus, files):
    """An analysed file of the corpus that no other file imports, near the middle."""
    from dllint.index.catalogue import build_catalogue
    from dllint.engine import load_source
    from dllint.index.project_context import project_root

    items = sorted((load_source(path, path) for path in files), key=lambda item: os.path.abspath(item.path))
    catalogue = build_catalogue(items, [project_root([corpus])])
    leaves = [items[n].path for n in catalogue.analysed if not catalogue.importers_of(n)]
    return leaves[len(leaves) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="*")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many files (0: all)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    directories = args.directories or [d for d in (torch_sources(), os.path.join(ROOT, "fixtures")) if d]
    files = python_files(directories, args.limit)
    lines = sum(open(f, encoding="utf-8", errors="replace").read().count("\n") for f in files)
    work = tempfile.mkdtemp(prefix="dllint-bench-")
    try:
        corpus = copy_corpus(files, os.path.join(work, "corpus"))
        copied = python_files([corpus], 0)
        rows = {}
        rows["(a) read + libcst parse"] = (*bare_parse(copied), None)
        rows["(b) parse + dllint facts"] = (*parse_and_facts(copied), None)
        cache = os.path.join(work, ".dllint_cache")
        rows["(c) dllint cold, 1 job"] = run_dllint(corpus, "--jobs", "1", "--no-cache")
        rows[f"(c) dllint cold, {args.jobs} jobs"] = run_dllint(corpus, "--jobs", str(args.jobs), "--no-cache")
        shutil.rmtree(cache, ignore_errors=True)
        run_dllint(corpus, "--jobs", str(args.jobs))  # fill the cache
        rows["(d) dllint warm, nothing changed"] = run_dllint(corpus, "--jobs", str(args.jobs))
        # Touch a file that is analysed (it mentions torch): it and the files that consulted it are linted again.
        analysed = [f for f in copied if "torch" in open(f, encoding="utf-8", errors="replace").read()]
        touched = analysed[len(analysed) // 2]
        with open(touched, "a", encoding="utf-8") as handle:
            handle.write("\n# touched by the benchmark\n")
        rows["(e) dllint warm, one file touched"] = run_dllint(corpus, "--jobs", str(args.jobs))
        # An editor or a pre-commit hook names one file of the project: the file that no other file
        # imports (no other file is linted for it) in the middle of the corpus.
        leaf = leaf_file(corpus, copied)
        rows["(f) one file named, warm"] = run_dllint(corpus, target=leaf)
        with open(leaf, "a", encoding="utf-8") as handle:
            handle.write("\n# edited by the benchmark\n")
        rows["(g) one file named and edited, warm index"] = run_dllint(corpus, target=leaf)
        shutil.rmtree(cache, ignore_errors=True)
        rows["(h) one file named, cold"] = run_dllint(corpus, target=leaf)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    a = rows["(a) read + libcst parse"][0]
    b = rows["(b) parse + dllint facts"][0]
    c1 = rows["(c) dllint cold, 1 job"][0]
    cn = rows[f"(c) dllint cold, {args.jobs} jobs"][0]
    d = rows["(d) dllint warm, nothing changed"][0]
    ratios = {"(c1)/(a)": c1 / a, "(c1)/(b)": c1 / b, "speed-up from cores": c1 / cn, "(d)/(c1)": d / c1}
    machine = f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores, " \
              f"Python {platform.python_version()}"
    if args.json:
        print(json.dumps({"files": len(files), "lines": lines, "machine": machine, "rows": rows, "ratios": ratios},
                         indent=2))
        return
    print(f"Corpus: {len(files)} files, {lines} lines ({', '.join(directories)}); machine: {machine}\n")
    print("| measurement | wall s | CPU s | files/s | KLOC/s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, (wall, cpu, rss) in rows.items():
        rss_text = f"{rss:.0f}" if rss is not None else "–"
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {len(files) / wall:.0f} | {lines / wall / 1000:.1f} | {rss_text} |")
    print()
    for name, value in ratios.items():
        print(f"- {name}: {value:.2f}")


if __name__ == "__main__":
    main()
