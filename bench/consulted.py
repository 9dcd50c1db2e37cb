"""Measure: what each worker of a `--jobs N` run parses besides its own files, and why.

Usage: python bench/consulted.py [--jobs N] DIRECTORY

Runs the workers' runs one after the other in this process (the split `runner.balanced_runs` makes;
no stealing between them), each with a store of its own as a worker has, and records every parse:
a file loaded whole, a skeleton of a file loaded in parts, a function body filled later. Reports per
run the characters parsed for its own files and for files it does not lint, the latter by the query
that caused them (the Project query and the model function that asked it), and the peak of parsed
source its store held (own files and consulted ones). Counts are characters, so they do not depend
on the machine's load; the CPU seconds do.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Frames that only pass a load along: the cause is the first frame outside them.
_PLUMBING = ("project.py", "engine.py", "parts.py", "facts.py")


def _cause() -> str:
    """"Project query <- model function" for the parse being made."""
    query = asker = None
    for frame in reversed(traceback.extract_stack()[:-3]):
        if os.sep + "dllint" + os.sep not in frame.filename:
            continue
        base = os.path.basename(frame.filename)
        if base == "project.py" and query is None and frame.name not in ("load", "_module_for"):
            query = frame.name
        elif base not in _PLUMBING:
            asker = f"{base[:-3]}.{frame.name}"
            break
    return f"{query or '-'} <- {asker or '-'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    from dllint import engine
    from dllint.config import default_codes
    from dllint.discovery import DEFAULT_EXCLUDES, discover
    from dllint.index.catalogue import build_catalogue, path_key
    from dllint.index.project_context import with_project
    from dllint.model import parts
    from dllint.runner import balanced_runs

    files, _ = discover([args.directory], DEFAULT_EXCLUDES)
    items = [engine.load_source(path, engine.display_path(path)) for path in files]
    items, roots = with_project(items, [args.directory])
    catalogue = build_catalogue(sorted(items, key=lambda i: path_key(i.path)), roots)
    codes = default_codes()
    runs = balanced_runs(engine.chunks(catalogue), [catalogue.source_size(n) for n in range(len(catalogue.items))],
                         args.jobs)
    size = lambda index: len(catalogue.items[index].source or "")  # noqa: E731
    state = {}

    real_facts, real_fill = engine.FactsStore.facts, parts.Parts.fill

    def facts(store, index, whole=False):
        held = index in store._held
        found = real_facts(store, index, whole)
        if not held:
            parsed = found.parts.parsed_chars if found is not None and found.parts is not None else size(index)
            state["events"].append(("load", index, _cause(), parsed))
        own = consulted = 0
        for held_index, held_facts in store._held.items():
            chars = engine._parsed_size(held_facts, catalogue.items[held_index])
            if held_index in state["linted"]:
                own += chars
            else:
                consulted += chars
        if own + consulted > sum(state["peak"]):
            state["peak"] = (own, consulted)
        return found

    def fill(self, scope):
        before = self.parsed_chars
        real_fill(self, scope)
        # A file being loaded (no index yet) is completed as part of its load, which counts it.
        if self.facts.index >= 0:
            state["events"].append(("body", self.facts.index, _cause(), self.parsed_chars - before))

    engine.FactsStore.facts, parts.Parts.fill = facts, fill
    for number, run in enumerate(runs):
        linted = {index for chunk in run for index in chunk}
        state.update(events=[], linted=linted, peak=(0, 0))
        store = engine.FactsStore(catalogue)
        cpu = time.process_time()
        with engine.without_cyclic_gc():
            for position, chunk in enumerate(run):
                store.own = {index for later in run[position:] for index in later}  # as a worker claims
                engine.lint_chunk(catalogue, store, chunk, codes)
        cpu = time.process_time() - cpu
        events = state["events"]
        own = sum(chars for _, index, _, chars in events if index in linted)
        others = [event for event in events if event[1] not in linted]
        other_files = {event[1] for event in others}
        print(f"run {number}: {len(linted)} files, {sum(map(size, linted)) / 1e6:.2f} M characters, "
              f"{cpu:.1f} s of CPU")
        print(f"  parsed for its own files {own / 1e6:.2f} M characters; for {len(other_files)} other files "
              f"{sum(e[3] for e in others) / 1e6:.2f} M ({sum(map(size, other_files)) / 1e6:.2f} M if whole): "
              f"loads {sum(e[3] for e in others if e[0] == 'load') / 1e6:.2f} M, "
              f"bodies {sum(e[3] for e in others if e[0] == 'body') / 1e6:.2f} M")
        print(f"  peak held {sum(state['peak']) / 1e6:.2f} M characters (own files {state['peak'][0] / 1e6:.2f} M, "
              f"others {state['peak'][1] / 1e6:.2f} M); the store parsed {store.parsed} times")
        chars, count = collections.Counter(), collections.Counter()
        for kind, _, cause, parsed in others:
            chars[(kind, cause)] += parsed
            count[(kind, cause)] += 1
        for (kind, cause), parsed in chars.most_common(12):
            print(f"    {parsed / 1e6:6.2f} M {count[(kind, cause)]:6d}x {kind:5s} {cause}")
        store.clear()


if __name__ == "__main__":
    main()
