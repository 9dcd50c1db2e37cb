"""Runs a lint in chunks of files: cached results where nothing they depended on changed, the rest in parallel.

The runner layer: above the project index (dllint/index/) and the per-file analysis (engine.py),
below the entry points (the command line, the language server, confirm)."""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from dllint.cache import ResultCache, file_key, run_key
from dllint.engine import FactsStore, FileOutcome, LintResult, SourceFile, chunks, display_path, lint_chunk, \
    load_source, merge_findings, named_count, notices_for, reported_findings, unanalysed_findings, without_cyclic_gc
from dllint.index.catalogue import SavedImports, build_catalogue, content_hash, path_key

# Below this many files a worker process costs more than it saves.
_PARALLEL_THRESHOLD = 8


def usable_cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return os.cpu_count() or 1


def lint_items(items: Sequence[SourceFile], codes: Sequence[str], roots: Sequence[str], jobs: int = 1,
               cache: Optional[ResultCache] = None, catalogue_memo=None, in_process: bool = False) -> LintResult:
    """Lint loaded files; the output does not depend on `jobs` or on the cache. A long-lived
    process passes the `catalogue_memo` of the project (catalogue.CatalogueMemo) and lints
    `in_process`: it lints on a thread, and a process forked from one with threads can deadlock."""
    ordered = sorted(items, key=lambda i: path_key(i.path))
    # Nothing changed since the last run: answer from one cache entry, without scanning imports.
    hashes = [content_hash(item) for item in ordered]
    whole_run = run_key(ordered, codes, hashes) if cache is not None else None
    if cache is not None:
        cached_run = cache.get(whole_run)
        if cached_run is not None:
            return LintResult(cached_run["findings"], files_checked=named_count(items), notices=cached_run["notices"])
    saved = SavedImports(cache.directory, roots) if cache is not None and catalogue_memo is None else None
    catalogue = build_catalogue(ordered, roots, catalogue_memo, saved, hashes)
    layout = catalogue.layout_key()
    outcomes: Dict[int, FileOutcome] = {}
    pending: List[List[int]] = []
    for chunk in chunks(catalogue):
        cached = {}
        for index in chunk:
            found = cache.get_file(file_key(catalogue, index, codes, layout), catalogue) if cache is not None else None
            if found is None:
                break
            cached[index] = FileOutcome(index, found, [], [])
        # A chunk is analysed whole or not at all, so that every file is analysed in the same company.
        if len(cached) == len(chunk):
            outcomes.update(cached)
        else:
            pending.append(chunk)
    for outcome in _lint_pending(catalogue, pending, list(codes), jobs, in_process):
        outcomes[outcome.index] = outcome
        if cache is not None:
            cache.put_file(file_key(catalogue, outcome.index, codes, layout), catalogue, outcome)
    findings = merge_findings(catalogue, [outcomes[n] for n in catalogue.linted])
    analysed = set(catalogue.analysed)
    findings.extend(f for n, item in enumerate(ordered) if n not in analysed for f in unanalysed_findings(item))
    findings = reported_findings(ordered, findings)
    notices = notices_for(ordered)
    if cache is not None:
        cache.put(whole_run, findings, notices)
    return LintResult(findings, files_checked=named_count(ordered), notices=notices,
                      files_analysed=sum(map(len, pending)), catalogue=catalogue)


def _lint_pending(catalogue, pending: List[List[int]], codes: List[str], jobs: int,
                  in_process: bool = False) -> List[FileOutcome]:
    # Large runs go to worker processes even with one job: a worker exits without freeing the
    # parsed trees one by one, which takes this process as long again once the cyclic GC is back.
    if in_process or sum(map(len, pending)) < _PARALLEL_THRESHOLD:
        store = FactsStore(catalogue, own=[index for chunk in pending for index in chunk])
        try:
            with without_cyclic_gc():
                return [outcome for chunk in pending for outcome in lint_chunk(catalogue, store, chunk, codes)]
        finally:
            store.clear()
    context = _context()
    fork = context.get_start_method() == "fork"
    if fork:
        _import_analysis(codes)
    # One run of neighbouring chunks per worker: they consult the same files, which it then parses once;
    # what other workers lint, it loads only in parts.
    runs = balanced_runs(pending, [catalogue.source_size(n) for n in range(len(catalogue.items))], jobs)
    # Run r owns the chunk positions bounds[2r] <= p < bounds[2r+1]; workers move these bounds as they claim.
    bounds = context.Array("i", [bound for start, end in _run_ranges(runs) for bound in (start, end)])
    # fork: workers inherit what they need; elsewhere it is sent once to each worker.
    shared = (catalogue, codes, pending, bounds)
    _WORKER.update(zip(("catalogue", "codes", "pending", "bounds"), shared))
    try:
        done = _run_workers(context, len(runs), () if fork else shared, recycle=fork)
    finally:
        _WORKER.clear()
    return [outcome for _, chunk_outcomes in sorted(done, key=lambda claimed: claimed[0])
            for outcome in chunk_outcomes]


class WorkerError(RuntimeError):
    """A worker process ended without reporting (killed, or crashed in native code)."""


class _RemoteTraceback(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _run_workers(context, runs: int, arguments: tuple, recycle: bool) -> List[Tuple[int, List[FileOutcome]]]:
    """One worker process per run, each reporting once, when it ends. A worker that `recycle`s stops
    after a chunk once memory it no longer uses has piled up (see _memory_left_behind), and a fresh
    process, forked from this small one, goes on with its run: what the old one held is released whole."""
    from multiprocessing.connection import wait

    live: Dict[object, Tuple[object, int]] = {}

    def start(run: int) -> None:
        receiving, sending = context.Pipe(duplex=False)
        process = context.Process(target=_worker_main, args=(run, sending, recycle, *arguments), daemon=True)
        process.start()
        sending.close()
        live[receiving] = (process, run)

    done: List[Tuple[int, List[FileOutcome]]] = []
    try:
        for run in range(runs):
            start(run)
        while live:
            for connection in wait(list(live)):
                process, run = live.pop(connection)
                try:
                    kind, payload = connection.recv()
                except EOFError:
                    process.join()
                    raise WorkerError(f"a worker process ended unexpectedly ({_how_it_ended(process.exitcode)})") from None
                finally:
                    connection.close()
                process.join()
                if kind == "error":
                    error, text = payload
                    raise error from _RemoteTraceback(text)
                done.extend(payload)
                if kind == "more":
                    start(run)
    finally:
        for connection, (process, _) in live.items():
            process.terminate()
            process.join()
            connection.close()
    return done


def _how_it_ended(exit_code: Optional[int]) -> str:
    if exit_code is not None and exit_code < 0:
        # The system's out-of-memory killer sends SIGKILL (9).
        return f"killed by signal {-exit_code}" + (", perhaps for lack of memory" if exit_code == -9 else "")
    return f"exit code {exit_code}"


def _worker_main(run: int, sending, recycle: bool, *arguments) -> None:
    import traceback

    try:
        _start_worker(*arguments)
        finished, done = _lint_run(run, recycle)
        sending.send(("done" if finished else "more", done))
    except BaseException as error:  # reported to the parent, which raises it
        text = traceback.format_exc()
        try:
            sending.send(("error", (error, text)))
        except Exception:  # an exception that does not pickle
            sending.send(("error", (RuntimeError(f"{type(error).__name__}: {error}"), text)))
    finally:
        sending.close()


def _import_analysis(codes: List[str]) -> None:
    """Import the analysis (libcst, the model, the checks) before forking: the workers share it
    instead of each importing it again (a warm run that lints a few chunks: 0.2-0.3 s of CPU per worker)."""
    import importlib

    from dllint import registry

    for module in ("dllint.context", "dllint.model.flow", "dllint.model.project", "dllint.positions"):
        importlib.import_module(module)  # what lint_chunk imports
    for rule in (registry.get_rule(code) for code in codes):
        if rule is not None:
            rule.check  # the first use imports every check module


def _run_ranges(runs: List[List[List[int]]]) -> List[Tuple[int, int]]:
    ranges, start = [], 0
    for run in runs:
        ranges.append((start, start + len(run)))
        start += len(run)
    return ranges


def balanced_runs(chunks: List[List[int]], sizes: Sequence[int], jobs: int) -> List[List[List[int]]]:
    """At most `jobs` runs of consecutive chunks with about the same amount of source each
    (parsing time follows source size)."""
    total = sum(sizes[i] for chunk in chunks for i in chunk)
    runs: List[List[List[int]]] = [[]]
    done = 0
    for chunk in chunks:
        # Start the next run once this one holds its share, measured at the chunk's middle.
        weight = sum(sizes[i] for i in chunk)
        if runs[-1] and len(runs) < jobs and done + weight / 2 > total * len(runs) / jobs:
            runs.append([])
        runs[-1].append(chunk)
        done += weight
    return runs


_WORKER: dict = {}


def _start_worker(catalogue=None, codes=None, pending=None, bounds=None) -> None:
    import gc

    gc.disable()  # for the worker's life: see without_cyclic_gc
    if catalogue is not None:
        _WORKER.update(catalogue=catalogue, codes=codes, pending=pending, bounds=bounds)
    _WORKER["store"] = FactsStore(_WORKER["catalogue"])
    _WORKER["start_resident"] = _resident_bytes()


def _lint_run(run: int, recycle: bool = False) -> Tuple[bool, List[Tuple[int, List[FileOutcome]]]]:
    """Lint run `run`'s chunks from its front, then help the others: whether nothing is left, and
    (chunk position, outcomes) per chunk. With `recycle`, it stops early once a fresh process would
    hold much less (see _memory_left_behind)."""
    catalogue, store, codes, pending = _WORKER["catalogue"], _WORKER["store"], _WORKER["codes"], _WORKER["pending"]
    done = []
    while True:
        claimed = claim_chunk(_WORKER["bounds"], run)
        if claimed is None:
            return True, done
        position, still_owned = claimed
        # What this worker will lint is parsed whole when consulted; the rest only in parts.
        store.own = {index for p in (position, *still_owned) for index in pending[p]}
        done.append((position, lint_chunk(catalogue, store, pending[position], codes)))
        if recycle and _memory_left_behind(store) > RECYCLE_AFTER_BYTES and _chunks_left(_WORKER["bounds"]):
            return False, done


# A worker that keeps this much memory it no longer uses hands its run to a fresh process. The C
# allocator cannot give back the memory of the trees of a large chunk while a few objects made among
# them live on, so a worker's memory otherwise stays at its largest chunk's for the rest of its run,
# and two workers' largest chunks add up. Torch's dense packages pass it; the training corpus's
# workers (up to about 110 MB) do not, where a fresh process would parse again what the old one held.
RECYCLE_AFTER_BYTES = 150_000_000
# Memory a worker's held facts take per character of parsed source.
_BYTES_PER_PARSED_CHAR = 50


def _memory_left_behind(store) -> int:
    """Bytes this process holds beyond what it started with and what its held facts need; 0 where
    the resident size cannot be read cheaply."""
    resident = _resident_bytes()
    if resident is None or "start_resident" not in _WORKER:
        return 0
    return resident - _WORKER["start_resident"] - _BYTES_PER_PARSED_CHAR * store.held_chars()


def _resident_bytes() -> Optional[int]:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _chunks_left(bounds) -> bool:
    with bounds.get_lock():
        return any(bounds[2 * run] < bounds[2 * run + 1] for run in range(len(bounds) // 2))


def claim_chunk(bounds, run: int) -> Optional[Tuple[int, range]]:
    """Claim the next chunk of run `run`, front first; once that run is empty, the last chunk of the
    run with most left. Sizes only approximate the cost of a chunk, so a worker that finishes early
    takes over the far end of another's run, among neighbouring files, instead of waiting.
    Returns the chunk's position and the positions still left in `run`."""
    with bounds.get_lock():
        start, end = bounds[2 * run], bounds[2 * run + 1]
        if start < end:
            bounds[2 * run] = start + 1
            return start, range(start + 1, end)
        victim = max(range(len(bounds) // 2), key=lambda r: bounds[2 * r + 1] - bounds[2 * r])
        if bounds[2 * victim + 1] <= bounds[2 * victim]:
            return None
        bounds[2 * victim + 1] -= 1
        return bounds[2 * victim + 1], range(0)


def _context():
    import multiprocessing

    # fork starts workers with dllint already imported; elsewhere fall back to the default.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def lint_sources(items: Sequence[SourceFile], codes: Sequence[str], roots: Sequence[str] = ()) -> LintResult:
    """Lint already-loaded files as one project, in this process, and return sorted findings."""
    ordered = sorted(items, key=lambda i: path_key(i.path))
    catalogue = build_catalogue(ordered, roots)
    store = FactsStore(catalogue, own=catalogue.linted)
    analysed = set(catalogue.analysed)
    with without_cyclic_gc():
        outcomes = [outcome for chunk in chunks(catalogue) for outcome in lint_chunk(catalogue, store, chunk, codes)]
    findings = merge_findings(catalogue, outcomes)
    findings.extend(f for n, item in enumerate(ordered) if n not in analysed for f in unanalysed_findings(item))
    store.clear()
    return LintResult(reported_findings(ordered, findings), files_checked=named_count(ordered),
                      notices=notices_for(ordered), files_analysed=len(outcomes))


def lint_paths(paths: Iterable[str], codes: Sequence[str], exclude: Sequence[str] = (), jobs: int = 1) -> LintResult:
    """Lint files and directories exactly as the command line does (without config or cache)."""
    from dllint.discovery import DEFAULT_EXCLUDES, discover
    from dllint.index.project_context import with_project

    paths = list(paths)
    files, _ = discover(paths, exclude)
    items = [load_source(path, display_path(path)) for path in files]
    items, roots = with_project(items, paths, exclude=(*DEFAULT_EXCLUDES, *exclude))
    return lint_items(items, codes, roots, jobs=jobs)
