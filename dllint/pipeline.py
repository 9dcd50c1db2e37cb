"""From engine findings to what the user sees: per-file ignores, suppression comments, severities.

Shared by the command line and the language server, so both report exactly the same things.
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Set, Tuple

from dllint.findings import Finding


def apply_settings(findings: List[Finding], sources: Mapping[str, Optional[str]], settings,
                   warn_unused: Optional[bool] = None) -> Tuple[List[Finding], List[Tuple[Finding, str]]]:
    """(reported findings, silenced findings with the reason). Unused suppressions are reported as
    `warn_unused` says, else as the settings' `warn-unused-suppressions` says."""
    if warn_unused is None:
        warn_unused = settings.warn_unused_suppressions
    from dllint.suppressions import apply_per_file_ignores, apply_suppressions

    # Per-file ignores first, then comments, so that a comment made redundant by the config shows as unused.
    per_file = apply_per_file_ignores(findings, settings.ignored_codes_for)
    commented = apply_suppressions(per_file.findings, sources, settings.active_codes, warn_unused)
    # Unused-suppression findings (DL998) are new: per-file ignores apply to them as well.
    unused = apply_per_file_ignores(commented.findings, settings.ignored_codes_for)
    reported = [settings.adjusted(f) for f in unused.findings]
    silenced = sorted(((settings.adjusted(f), reason)
                       for f, reason in [*per_file.suppressed, *commented.suppressed, *unused.suppressed]),
                      key=lambda pair: pair[0])
    return reported, silenced


def lint_buffer(path: str, text: str, settings=None, buffers: Optional[Mapping[str, str]] = None,
                live=None) -> List[Finding]:
    """Lint an editor buffer under its file name, with the settings that apply to that file, in the
    company of its project (where `buffers`, other unsaved documents by absolute path, override disk).
    A long-lived process passes what it keeps of its projects (index/live.py): the lint then runs in
    this process, and reuses the project's walk and catalogue where they still hold."""
    return _lint_buffer(path, text, settings, buffers, False, live)[0]


def lint_buffer_and_links(path: str, text: str, settings=None, buffers: Optional[Mapping[str, str]] = None,
                          live=None) -> Tuple[List[Finding], Optional[Set[str]]]:
    """lint_buffer, and the project files linked to the buffer through imports, whose findings a
    change of it can change (project_context.linked_files; None: any file's may)."""
    return _lint_buffer(path, text, settings, buffers, True, live)


def _lint_buffer(path: str, text: str, settings, buffers: Optional[Mapping[str, str]], with_links: bool, live):
    from dllint.config import command_line_layer, load_settings
    from dllint.engine import display_path, load_source
    from dllint.index.project_context import files_linked_to, with_project
    from dllint.runner import lint_items

    if settings is None:
        settings = load_settings([path], command_line_layer(None, [], [], [], [], [], None))
    shown = display_path(path)
    item = load_source(path, shown, text.encode("utf-8"))
    items, roots = with_project([item], [path], settings.config_path, settings.exclude, settings.base_directory,
                                settings.respect_gitignore, buffers, live=live)
    memo = live.catalogue_memo(roots) if live is not None else None
    result = lint_items(items, settings.active_codes, roots, catalogue_memo=memo, in_process=live is not None)
    reported, _ = apply_settings(result.findings, {shown: item.source}, settings)
    return reported, files_linked_to(path, result.catalogue) if with_links and result.catalogue else None
