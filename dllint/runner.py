"""Runs a lint over components: cached results where nothing changed, the rest in parallel."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import List, Optional, Sequence, Tuple

from dllint.cache import ResultCache, component_key
from dllint.engine import LintResult, SourceFile, lint_sources

# Below this many files a worker pool costs more than it saves.
_PARALLEL_THRESHOLD = 8


def usable_cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return os.cpu_count() or 1


def lint_items(items: Sequence[SourceFile], codes: Sequence[str], roots: Sequence[str], jobs: int = 1,
               cache: Optional[ResultCache] = None) -> LintResult:
    """Lint loaded files; the output does not depend on `jobs` or on the cache."""
    from dllint.components import components

    # Nothing changed since the last run: answer from one cache entry, without building the import graph.
    run_key = component_key(sorted(items, key=lambda i: i.path), ["run", *codes]) if cache is not None else None
    if cache is not None:
        cached_run = cache.get(run_key)
        if cached_run is not None:
            return LintResult(cached_run["findings"], files_checked=len(items), notices=cached_run["notices"])
    groups = components(items, roots)
    keys = [component_key(group, codes) for group in groups] if cache is not None else [None] * len(groups)
    results: List[Optional[Tuple[list, list]]] = [None] * len(groups)
    pending = []
    for index, (group, key) in enumerate(zip(groups, keys)):
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            results[index] = (cached["findings"], cached["notices"])
        else:
            pending.append(index)
    work = [([_portable(i) for i in groups[index]], list(codes), list(roots)) for index in pending]
    files = sum(len(groups[index]) for index in pending)
    if jobs > 1 and len(pending) > 1 and files >= _PARALLEL_THRESHOLD:
        # Largest components first so that one big component does not start last.
        order = sorted(range(len(work)), key=lambda n: -len(work[n][0]))
        with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=_context()) as pool:
            done = dict(zip(order, pool.map(_lint_component, [work[n] for n in order])))
        outputs = [done[n] for n in range(len(work))]
    else:
        outputs = [_lint_component(unit) for unit in work]
    for index, output in zip(pending, outputs):
        results[index] = output
        if cache is not None:
            cache.put(keys[index], *output)
    findings = sorted(f for found, _ in results for f in found)
    notices = [n for _, found in results for n in found]
    if cache is not None:
        cache.put(run_key, findings, notices)
    return LintResult(findings, files_checked=len(items), notices=notices)


def _portable(item: SourceFile) -> SourceFile:
    """A copy without parsed state, cheap to send to a worker."""
    return SourceFile(item.path, item.display_path, item.source, None, item.error, item.too_large)


def _lint_component(unit) -> Tuple[list, list]:
    items, codes, roots = unit
    result = lint_sources(items, codes, roots)
    return result.findings, result.notices


def _context():
    import multiprocessing

    # fork starts workers with dllint already imported; elsewhere fall back to the default.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)
