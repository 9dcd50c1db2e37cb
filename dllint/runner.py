"""Runs a lint in chunks of files: cached results where nothing they depended on changed, the rest in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence

from dllint.cache import ResultCache, file_key, run_key
from dllint.engine import FactsStore, FileOutcome, LintResult, SourceFile, chunks, lint_chunk, merge_findings, \
    notices_for, unanalysed_findings, without_cyclic_gc

# Below this many files a worker process costs more than it saves.
_PARALLEL_THRESHOLD = 8


def usable_cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return os.cpu_count() or 1


def lint_items(items: Sequence[SourceFile], codes: Sequence[str], roots: Sequence[str], jobs: int = 1,
               cache: Optional[ResultCache] = None) -> LintResult:
    """Lint loaded files; the output does not depend on `jobs` or on the cache."""
    from dllint.catalogue import build_catalogue

    ordered = sorted(items, key=lambda i: i.path)
    # Nothing changed since the last run: answer from one cache entry, without scanning imports.
    whole_run = run_key(ordered, codes) if cache is not None else None
    if cache is not None:
        cached_run = cache.get(whole_run)
        if cached_run is not None:
            return LintResult(cached_run["findings"], files_checked=len(items), notices=cached_run["notices"])
    catalogue = build_catalogue(ordered, roots)
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
    for outcome in _lint_pending(catalogue, pending, list(codes), jobs):
        outcomes[outcome.index] = outcome
        if cache is not None:
            cache.put_file(file_key(catalogue, outcome.index, codes, layout), catalogue, outcome)
    findings = merge_findings(catalogue, [outcomes[n] for n in catalogue.analysed])
    analysed = set(catalogue.analysed)
    findings.extend(f for n, item in enumerate(ordered) if n not in analysed for f in unanalysed_findings(item))
    findings = sorted(set(findings))
    notices = notices_for(ordered)
    if cache is not None:
        cache.put(whole_run, findings, notices)
    return LintResult(findings, files_checked=len(items), notices=notices, files_analysed=sum(map(len, pending)))


def _lint_pending(catalogue, pending: List[List[int]], codes: List[str], jobs: int) -> List[FileOutcome]:
    # Large runs go to worker processes even with one job: a worker exits without freeing the
    # parsed trees one by one, which takes this process as long again once the cyclic GC is back.
    if sum(map(len, pending)) < _PARALLEL_THRESHOLD:
        store = FactsStore(catalogue, own=[index for chunk in pending for index in chunk])
        try:
            with without_cyclic_gc():
                return [outcome for chunk in pending for outcome in lint_chunk(catalogue, store, chunk, codes)]
        finally:
            store.clear()
    context = _context()
    # fork: workers inherit the catalogue; elsewhere it is sent once to each worker.
    _WORKER["catalogue"], _WORKER["codes"] = catalogue, codes
    arguments = () if context.get_start_method() == "fork" else (catalogue, codes)
    try:
        with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(pending))), mp_context=context,
                                 initializer=_start_worker, initargs=arguments) as pool:
            # One run of neighbouring chunks per worker: they consult the same files, which it then parses
            # once; what other workers lint, it loads only in parts.
            runs = balanced_runs(pending, [len(catalogue.items[i].source or "") for i in range(len(catalogue.items))],
                                 jobs)
            return [outcome for done in pool.map(_lint_run, runs) for outcome in done]
    finally:
        _WORKER.clear()


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


def _start_worker(catalogue=None, codes=None) -> None:
    import gc

    gc.disable()  # for the worker's life: see without_cyclic_gc
    if catalogue is not None:
        _WORKER["catalogue"], _WORKER["codes"] = catalogue, codes
    _WORKER["store"] = FactsStore(_WORKER["catalogue"])


def _lint_run(run: List[List[int]]) -> List[FileOutcome]:
    catalogue, store, codes = _WORKER["catalogue"], _WORKER["store"], _WORKER["codes"]
    store.own = {index for chunk in run for index in chunk}
    return [outcome for chunk in run for outcome in lint_chunk(catalogue, store, chunk, codes)]


def _context():
    import multiprocessing

    # fork starts workers with dllint already imported; elsewhere fall back to the default.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)
