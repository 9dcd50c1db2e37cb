"""The command line: `dllint PATH...`, `dllint check`, `dllint config`, `dllint list-rules`, `dllint explain`."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from dllint import __version__
from dllint.output import FORMAT_NAMES

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split_codes(values: Tuple[str, ...]) -> List[str]:
    return [code.strip() for value in values for code in value.split(",") if code.strip()]


class DefaultToCheck(click.Group):
    """`dllint PATH` means `dllint check PATH`. A subcommand name always means the subcommand (an
    editor running `dllint server` in a repository with a `server/` package must get the server);
    such a directory is linted as `dllint check server` or `dllint server/`."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if args and args[0] not in ("--help", "-h", "--version") and args[0] not in self.commands:
            args = ["check", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        # A bug in dllint must not read as "findings" (exit 1) in CI: one line and exit 2, as for any
        # failure that is not about the linted code.
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # noqa: BLE001 - the last line of defence
            click.echo(f"dllint: internal error: {type(error).__name__}: {error} (please report it)", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dllint", message="%(prog)s %(version)s")
def main() -> None:
    """dllint: finds the silent bugs of PyTorch training code.

    Run `dllint PATH...` to lint files and directories.
    """


def _settings_options(command):
    """The flags that make up the settings, shared by `check` and `config`; they override the file."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), metavar="PATH",
                     help="Read settings from PATH instead of the nearest pyproject.toml with [tool.dllint]."),
        click.option("--isolated", is_flag=True, help="Ignore every configuration file."),
        click.option("--select", multiple=True, metavar="CODES",
                     help="Comma-separated codes, prefixes or rule names to enable (replaces the configured "
                          "selection)."),
        click.option("--extend-select", multiple=True, metavar="CODES",
                     help="Comma-separated codes, prefixes or rule names to enable on top of the selection."),
        click.option("--ignore", multiple=True, metavar="CODES",
                     help="Comma-separated codes, prefixes or rule names to disable."),
        click.option("--per-file-ignores", multiple=True, metavar="GLOB:CODES",
                     help="Disable CODES in files matching GLOB."),
        click.option("--exclude", multiple=True, metavar="GLOB",
                     help="Skip files and directories matching GLOB (in addition to the configured excludes)."),
        click.option("--force-exclude/--no-force-exclude", default=None,
                     help="Apply the excludes to paths named on the command line too (for pre-commit)."),
        click.option("--severity", multiple=True, metavar="CODE=LEVEL",
                     help="Report CODE (or a prefix) as error, warning or info."),
        click.option("--respect-gitignore/--no-respect-gitignore", default=None,
                     help="Skip files that git ignores, unless named explicitly (default: on)."),
        click.option("--warn-unused-suppressions/--no-warn-unused-suppressions", default=None,
                     help="Report suppression comments that silence nothing (DL998)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _load_settings(paths: Sequence[str], flags: Dict[str, Any]):
    from dllint.config import ConfigError, command_line_layer, load_settings

    select = _split_codes(flags["select"])
    try:
        layer = command_line_layer(select=select or None, extend_select=_split_codes(flags["extend_select"]),
                                   ignore=_split_codes(flags["ignore"]), exclude=list(flags["exclude"]),
                                   per_file_ignores=flags["per_file_ignores"], severity=flags["severity"],
                                   respect_gitignore=flags["respect_gitignore"],
                                   force_exclude=flags["force_exclude"],
                                   warn_unused_suppressions=flags["warn_unused_suppressions"])
        return load_settings(paths, layer, flags["config_file"], flags["isolated"])
    except ConfigError as error:
        _fail(str(error))


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    # https://no-color.org: any non-empty NO_COLOR turns colour off; an explicit --color always wins.
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@_settings_options
@click.option("--format", "output_format", type=click.Choice(FORMAT_NAMES), default="text",
              show_default=True, help="Output format.")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), metavar="PATH",
              help="Write the report to PATH instead of stdout (any format).")
@click.option("--statistics", is_flag=True,
              help="Print the number of findings per rule (and how many are fixable) instead of each finding.")
@click.option("--show-source", is_flag=True, help="Text format: print the source line and a caret under the finding.")
@click.option("--color", "color_choice", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="Colour the text output (auto: only on a terminal, and not with NO_COLOR).")
@click.option("--show-suppressed", is_flag=True, help="Also list the findings that suppressions silenced.")
@click.option("--stdin-filename", metavar="PATH",
              help="With PATH `-`: the name of the buffer read from stdin (settings apply to that name).")
@click.option("--diff-base", metavar="REF",
              help="Report only findings on lines added or changed since the git revision REF.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes (default: the number of usable cores).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache (.dllint_cache/).")
@click.option("--fix", is_flag=True, help="Apply the fixes that are certainly safe, then report what is left.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff: also apply fixes that change behaviour.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and change nothing.")
@click.option("--add-noqa", is_flag=True,
              help="Add a `# dllint: ignore[CODE]` comment to every line with a finding.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (errors still exit 2).")
@click.option("--exit-non-zero-on-fix", is_flag=True,
              help="With --fix: exit 1 when a file was fixed, even if no finding is left.")
@click.option("--quiet", "-q", is_flag=True, help="Print the findings and errors only: no summary.")
def check(paths: Tuple[str, ...], output_format: str, output_file: Optional[str], statistics: bool,
          show_source: bool, color_choice: str, show_suppressed: bool, stdin_filename: Optional[str],
          diff_base: Optional[str], jobs: Optional[int], no_cache: bool, fix: bool, unsafe_fixes: bool, diff: bool,
          add_noqa: bool, exit_zero: bool, exit_non_zero_on_fix: bool, quiet: bool, **flags: Any) -> None:
    """Lint PATHS (files or directories; default: the working directory) for PyTorch training bugs;
    `-` reads stdin."""
    from dllint.config import search_start
    from dllint.cache import ResultCache
    from dllint.cache_folder import CACHE_DIRECTORY
    from dllint.discovery import is_excluded

    from_stdin = "-" in paths or (stdin_filename is not None and not paths)
    if from_stdin and len(paths) > 1:
        _fail("`-` (stdin) cannot be combined with other paths")
    if add_noqa and (fix or diff):
        _fail("--add-noqa cannot be combined with --fix or --diff")
    if add_noqa and from_stdin:
        _fail("--add-noqa works on files, not on stdin")
    if statistics and output_format not in ("text", "json"):
        _fail("--statistics is printed as text or json")
    if not paths and not from_stdin:
        paths = (".",)
    targets = [stdin_filename or os.getcwd()] if from_stdin else list(paths)
    settings = _load_settings(targets, flags)
    changed_lines = _changed_lines(diff_base, targets) if diff_base else None
    cache = None if no_cache or from_stdin else ResultCache(os.path.join(settings.base_directory, CACHE_DIRECTORY))
    run = _Run(settings, jobs, cache, changed_lines, show_suppressed)
    # The project index (summaries of the files a run does not name) lives beside the results.
    run.index_directory = None if cache is None else cache.directory

    if from_stdin:
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        data = stream.read()
        if isinstance(data, str):  # a text-only stdin, as some embedders provide
            data = data.encode("utf-8")
        if stdin_filename and settings.force_exclude and \
                is_excluded(stdin_filename, settings.exclude, settings.base_directory):
            if fix:  # an editor's format-on-save expects the buffer back
                _write_bytes(data)
            sys.exit(EXIT_CLEAN)
        run.stdin = (stdin_filename, data)
    else:
        run.paths = list(paths)
    run.lint()

    if diff:
        _print_diff(run, unsafe_fixes, quiet, exit_zero)
    fixed_count = _apply_fixes(run, unsafe_fixes) if fix else 0
    if fix and not quiet:
        click.echo(f"Fixed {fixed_count} problem{'s' if fixed_count != 1 else ''}.", err=True)
    if add_noqa:
        _add_noqa(run, quiet)

    for notice in run.result.notices:
        click.echo(f"dllint: warning: {notice}", err=True)
    report = _report(run, output_format, statistics, show_source, color_choice, unsafe_fixes, search_start(targets))
    if output_file:
        _write_report(output_file, report)
    elif from_stdin and fix:
        click.echo(report, nl=False, err=True)  # stdout carries the fixed source
    else:
        click.echo(report, nl=False, color=output_format == "text" and _use_color(color_choice))
    if from_stdin and fix:
        _write_bytes(run.stdin[1])
    if not quiet:
        _print_summary(run, unsafe_fixes, fix)
    if run.write_errors:
        sys.exit(EXIT_ERROR)
    if exit_zero:
        sys.exit(EXIT_CLEAN)
    if exit_non_zero_on_fix and fixed_count:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_FINDINGS if run.findings else EXIT_CLEAN)


class _Run:
    """One lint of the named files (or of stdin), redone after fixes change them."""

    def __init__(self, settings, jobs: Optional[int], cache, changed_lines, show_suppressed: bool) -> None:
        self.settings = settings
        self.jobs = jobs
        self.cache = cache
        self.changed_lines = changed_lines
        self.show_suppressed = show_suppressed
        self.paths: List[str] = []
        self.stdin: Optional[Tuple[Optional[str], bytes]] = None  # (--stdin-filename, the buffer's bytes)
        self.write_errors: List[str] = []
        self.unwritable: set = set()
        self.index_directory: Optional[str] = None

    def lint(self) -> None:
        from dllint.pipeline import apply_settings
        from dllint.runner import WorkerError, lint_items, usable_cores

        warnings: List[str] = []
        if self.stdin is not None:
            self.items, roots = _stdin_items(*self.stdin, self.settings)
        else:
            self.items, roots, warnings = _read_files(self.paths, self.settings, self.index_directory)
        try:
            self.result = lint_items(self.items, self.settings.active_codes, roots,
                                     jobs=self.jobs or usable_cores(), cache=self.cache)
        except WorkerError as error:
            _fail(str(error))
        self.result.notices[:0] = warnings
        self.sources = {item.display_path: item.source for item in self.items if not item.context_only}
        self.notebooks = {item.display_path: item.notebook for item in self.items if item.notebook is not None}
        findings, silenced = apply_settings(self.result.findings, self.sources, self.settings)
        if self.changed_lines is not None:
            findings = [f for f in findings if self._changed(f)]
            silenced = [(f, reason) for f, reason in silenced if self._changed(f)]
        self.findings = findings
        self.silenced = silenced if self.show_suppressed else []

    def _changed(self, finding) -> bool:
        notebook = self.notebooks.get(finding.path)
        if notebook is not None:
            # git sees the notebook's JSON lines.
            import dataclasses

            from dllint.output.locations import file_region

            line, _, end_line, _ = file_region(finding, self.notebooks)
            finding = dataclasses.replace(finding, line=line, end_line=end_line)
        return self.changed_lines.covers(finding)

    def file_text(self, path: str) -> str:
        """What the file at `path` held when linted: a notebook's JSON, else the linted source."""
        notebook = self.notebooks.get(path)
        return notebook.raw if notebook is not None else self.sources[path]

    def fail_write(self, path: str, message: str) -> None:
        click.echo(f"dllint: error: {path}: {message}", err=True)
        self.write_errors.append(path)
        self.unwritable.add(path)


def _stdin_items(stdin_filename: Optional[str], data: bytes, settings):
    """The buffer on stdin as one loaded file, named after --stdin-filename (else `-`), in the
    company of the rest of its project."""
    from dllint.engine import display_path, load_source
    from dllint.index.project_context import with_project

    name = stdin_filename or "-"
    buffer = load_source(name, display_path(name) if stdin_filename else name, data)
    if not stdin_filename:
        return [buffer], [os.getcwd()]
    return with_project([buffer], [name], settings.config_path, settings.exclude, settings.base_directory,
                        settings.respect_gitignore)


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None) or sys.stdout
    stream.write(data if stream is not sys.stdout else data.decode("utf-8", "surrogateescape"))
    stream.flush()


def _print_diff(run: _Run, unsafe_fixes: bool, quiet: bool, exit_zero: bool) -> None:
    """--diff: exactly the bytes --fix would write, as a patch; exits."""
    from dllint.rewrite import RewriteError, encode_like, read_if_unchanged, unified_diff

    changed = fixed_sources(run.findings, run.sources, unsafe_fixes, run.notebooks)
    shown = 0
    for path, text in sorted(changed.items()):
        try:
            old = run.stdin[1] if run.stdin is not None else read_if_unchanged(path, run.file_text(path))
            new = encode_like(old, text)
        except RewriteError as error:
            run.fail_write(path, str(error))
            continue
        _write_bytes(unified_diff(path, old, new))
        shown += 1
    if not quiet:
        click.echo(f"Would fix {shown} file{'s' if shown != 1 else ''}.", err=True)
    if run.write_errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if shown and not exit_zero else EXIT_CLEAN)


def _apply_fixes(run: _Run, unsafe_fixes: bool) -> int:
    """--fix: write the fixes, relint, and again while fixes make room for others; the number applied."""
    from dllint.rewrite import RewriteError, encode_like, rewrite_file

    fixed_count = 0
    for _ in range(MAX_FIX_ROUNDS):
        changed = fixed_sources([f for f in run.findings if f.path not in run.unwritable], run.sources,
                                unsafe_fixes, run.notebooks)
        if not changed:
            break
        written = set()
        for path, text in sorted(changed.items()):
            try:
                if run.stdin is not None:
                    run.stdin = (run.stdin[0], encode_like(run.stdin[1], text))
                else:
                    rewrite_file(path, run.file_text(path), text)
            except RewriteError as error:
                run.fail_write(path, str(error))
                continue
            written.add(path)
        fixed_count += sum(1 for f in run.findings if f.fix and f.path in written and
                           (unsafe_fixes or f.fix["applicability"] == "safe"))
        run.lint()
    return fixed_count


def _add_noqa(run: _Run, quiet: bool) -> None:
    """--add-noqa: a suppression comment on every line with a finding, then lint again."""
    from dllint.rewrite import RewriteError, rewrite_file
    from dllint.suppressions import add_suppression_comments, suppression_comment_edits

    by_path: Dict[str, list] = {}
    for finding in run.findings:
        by_path.setdefault(finding.path, []).append(finding)
    added = files = 0
    for path, findings in sorted(by_path.items()):
        source = run.sources.get(path)
        if source is None:
            continue
        notebook = run.notebooks.get(path)
        if notebook is not None:  # the comments go into the cells of the notebook's JSON
            edits, count, missed = suppression_comment_edits(source, findings)
            text, applied = notebook.apply_edits(edits)
            count, missed = count - (len(edits) - applied), missed + len(edits) - applied
        else:
            text, count, missed = add_suppression_comments(source, findings)
        if missed:
            click.echo(f"dllint: warning: {path}: {missed} finding{'s' if missed != 1 else ''} left without a "
                       f"comment (the file does not tokenize, or no line of the statement can end in one)",
                       err=True)
        if not count:
            continue
        try:
            rewrite_file(path, run.file_text(path), text)
        except RewriteError as error:
            run.fail_write(path, str(error))
            continue
        added += count
        files += 1
    if not quiet:
        click.echo(f"Added {added} suppression comment{'s' if added != 1 else ''} to {files} "
                   f"file{'s' if files != 1 else ''}.", err=True)
    if added:
        run.lint()


def _report(run: _Run, output_format: str, statistics: bool, show_source: bool, color_choice: str,
            unsafe_fixes: bool, start: str) -> str:
    from dllint import registry
    from dllint.discovery import repository_root
    from dllint.output import OutputOptions, get_formatter
    from dllint.output.statistics_format import format_statistics

    needs_root = output_format in ("sarif", "github", "gitlab")
    options = OutputOptions(
        show_source=show_source, color=output_format == "text" and _use_color(color_choice), sources=run.sources,
        repository_root=(repository_root(start) or os.getcwd()) if needs_root else None,
        suppressed=run.silenced, checked_paths=[item.display_path for item in run.items if not item.context_only],
        unsafe_fixes=unsafe_fixes, notebooks=run.notebooks,
        skipped=[(item.display_path, item.skip_reason) for item in run.items if item.skip_reason])
    infos = run.settings.rule_infos([r.info for r in registry.all_rules()])
    if statistics:
        return format_statistics(run.findings, infos, options, output_format)
    return get_formatter(output_format)(run.findings, infos, options)


def _write_report(path: str, report: str) -> None:
    try:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(report)
    except OSError as error:
        _fail(f"{path}: cannot write the report: {error.strerror or error}")


def _print_summary(run: _Run, unsafe_fixes: bool, fixed: bool) -> None:
    from dllint.output import is_fixable
    from dllint.output.text_format import fixable_line, summary_line

    skipped = [item for item in run.items if item.skip_reason]
    why = " or ".join(dict.fromkeys("too large to analyse" if item.too_large else "not Python" for item in skipped))
    files_with_findings = len({f.path for f in run.findings})
    click.echo(summary_line(len(run.findings), files_with_findings, run.result.files_checked, len(run.silenced),
                            len(skipped), why), err=True)
    if not fixed:
        fixable = sum(1 for f in run.findings if is_fixable(f, unsafe_fixes))
        hidden = sum(1 for f in run.findings if is_fixable(f, True)) - fixable
        line = fixable_line(fixable, hidden, unsafe_fixes)
        if line:
            click.echo(line, err=True)


def _changed_lines(revision: str, targets: Sequence[str]):
    from dllint.changed_lines import ChangedLinesError, changed_lines_since
    from dllint.config import search_start

    try:
        return changed_lines_since(revision, search_start(targets))
    except ChangedLinesError as error:
        _fail(str(error))


MAX_FIX_ROUNDS = 5


def fixed_sources(findings, sources, unsafe: bool, notebooks=None) -> Dict[str, str]:
    """New text of every file that the applicable fixes change (a notebook's whole JSON)."""
    from dllint.fixes import SAFE, apply_edits, chosen_edits

    by_path: Dict[str, list] = {}
    for finding in findings:
        if finding.fix and (unsafe or finding.fix["applicability"] == SAFE):
            by_path.setdefault(finding.path, []).append(finding.fix)
    changed = {}
    for path, fixes in by_path.items():
        notebook = (notebooks or {}).get(path)
        if notebook is not None:
            text, applied = notebook.apply_edits(chosen_edits(sources[path], fixes))
            if applied and text != notebook.raw:
                changed[path] = text
            continue
        text, applied = apply_edits(sources[path], fixes)
        if applied and text != sources[path]:
            changed[path] = text
    return changed


def _read_files(paths: Sequence[str], settings, index_directory: Optional[str] = None):
    from dllint.discovery import PathError, discover_files
    from dllint.engine import load_source
    from dllint.index.project_context import display_paths, with_project

    try:
        found = discover_files(paths, settings.exclude, settings.base_directory, settings.respect_gitignore,
                               settings.force_exclude)
    except PathError as error:
        _fail(str(error))
    read_since = time.time_ns()
    shown = display_paths()
    items = [load_source(path, shown(path)) for path in found.files]
    items, roots = with_project(items, paths, settings.config_path, settings.exclude, settings.base_directory,
                                settings.respect_gitignore, cache_directory=index_directory, read_since=read_since,
                                walked=found)
    return items, roots, found.warnings


@main.command("config")
@click.argument("paths", nargs=-1, type=click.Path())
@_settings_options
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def config_command(paths: Tuple[str, ...], output_format: str, **flags: Any) -> None:
    """Print the effective settings and the file they came from.

    The file is the one found for PATHS (default: the working directory); the flags apply on top.
    """
    from dllint.config import describe

    settings = _load_settings(list(paths), flags)
    described = describe(settings)
    if output_format == "json":
        click.echo(json.dumps(described, indent=2))
        return
    if settings.config_path:
        click.echo(f"# settings from {settings.config_path}, then the command line")
    else:
        click.echo("# no configuration file: built-in defaults, then the command line")
    click.echo(f"# paths in per-file-ignores and exclude are relative to {settings.base_directory}")
    for key in ("select", "per-file-ignores", "exclude", "severity", "respect-gitignore", "force-exclude",
                "warn-unused-suppressions"):
        click.echo(f"{key} = {_toml_value(described[key])}")


def _toml_value(value: Any) -> str:
    """A value written as TOML, so that the output can be pasted into [tool.dllint]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }" \
            if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


@main.command("clean")
@click.argument("paths", nargs=-1, type=click.Path())
@_settings_options
def clean(paths: Tuple[str, ...], **flags: Any) -> None:
    """Delete the result cache (.dllint_cache/ next to the configuration)."""
    from dllint.cache import clear
    from dllint.cache_folder import CACHE_DIRECTORY

    settings = _load_settings(list(paths) or [os.getcwd()], flags)
    directory = os.path.join(settings.base_directory, CACHE_DIRECTORY)
    if clear(directory):
        click.echo(f"Removed {directory}", err=True)
    else:
        click.echo(f"No cache at {directory}", err=True)


@main.command("server")
def language_server() -> None:
    """Run the language server on stdin/stdout (for editors)."""
    try:
        from dllint.lsp.server import main as serve
    except ImportError:
        _fail("the language server needs pygls: pip install 'dllint[lsp]'")
    serve()


@main.command("list-rules")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_rules(output_format: str) -> None:
    """List every rule: code, name, severity, default or opt-in, summary."""
    from dllint import registry

    infos = [r.info for r in registry.all_rules()]
    if output_format == "json":
        click.echo(json.dumps([{"code": i.code, "name": i.name, "severity": i.severity, "default": i.default,
                                "summary": i.summary} for i in infos], indent=2))
        return
    name_width = max(len(i.name) for i in infos)
    for info in infos:
        selection = "default" if info.default else "opt-in"
        click.echo(f"{info.code}  {info.name:<{name_width}}  {info.severity:<7}  {selection:<7}  {info.summary}")


@main.command("explain")
@click.argument("code")
def explain(code: str) -> None:
    """Print the page of rule CODE: why it is a bug, examples, the fix."""
    from dllint import registry
    from dllint.pages import read_page

    from dllint.config import rule_code

    found = rule_code(code)
    if found is None:
        _fail(f"unknown rule code or name: {code}")
    rule = registry.get_rule(found)
    page = read_page(rule.code)
    if page is None:
        _fail(f"the page for {rule.code} is not installed")
    click.echo(page, nl=False)


def _fail(message: str) -> None:
    click.echo(f"dllint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


def _register_runtime_mode() -> None:
    from dllint.runtime.command import confirm  # the runtime mode's command; it imports no torch

    main.add_command(confirm)


_register_runtime_mode()

if __name__ == "__main__":
    main()
