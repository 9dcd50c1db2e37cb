"""The command line: `dllint PATH...`, `dllint check`, `dllint config`, `dllint list-rules`, `dllint explain`."""

from __future__ import annotations

import difflib
import json
import os
import sys
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
                     help="Comma-separated codes or prefixes to enable (replaces the configured selection)."),
        click.option("--extend-select", multiple=True, metavar="CODES",
                     help="Comma-separated codes or prefixes to enable on top of the selection."),
        click.option("--ignore", multiple=True, metavar="CODES", help="Comma-separated codes or prefixes to disable."),
        click.option("--per-file-ignores", multiple=True, metavar="GLOB:CODES",
                     help="Disable CODES in files matching GLOB."),
        click.option("--exclude", multiple=True, metavar="GLOB",
                     help="Skip files and directories matching GLOB (in addition to the configured excludes)."),
        click.option("--severity", multiple=True, metavar="CODE=LEVEL",
                     help="Report CODE (or a prefix) as error, warning or info."),
        click.option("--respect-gitignore/--no-respect-gitignore", default=None,
                     help="Skip files that git ignores, unless named explicitly (default: on)."),
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
                                   respect_gitignore=flags["respect_gitignore"])
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
@click.option("--show-source", is_flag=True, help="Text format: print the source line and a caret under the finding.")
@click.option("--color", "color_choice", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True, help="Colour the text output (auto: only on a terminal, and not with NO_COLOR).")
@click.option("--show-suppressed", is_flag=True, help="Also list the findings that suppressions silenced.")
@click.option("--warn-unused-suppressions", is_flag=True,
              help="Report suppression comments that silence nothing (DL998).")
@click.option("--stdin-filename", metavar="PATH",
              help="With PATH `-`: the name of the buffer read from stdin (settings apply to that name).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
              help="Worker processes (default: the number of usable cores).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache (.dllint_cache/).")
@click.option("--fix", is_flag=True, help="Apply the fixes that are certainly safe, then report what is left.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff: also apply fixes that change behaviour.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff and change nothing.")
def check(paths: Tuple[str, ...], output_format: str, show_source: bool, color_choice: str,
          show_suppressed: bool, warn_unused_suppressions: bool, stdin_filename: Optional[str],
          jobs: Optional[int], no_cache: bool, fix: bool, unsafe_fixes: bool, diff: bool, **flags: Any) -> None:
    """Lint PATHS (files or directories) for PyTorch training bugs; `-` reads stdin."""
    from dllint import registry
    from dllint.config import search_start
    from dllint.discovery import repository_root
    from dllint.cache import CACHE_DIRECTORY, ResultCache
    from dllint.output import OutputOptions, get_formatter
    from dllint.runner import lint_items, usable_cores
    from dllint.output.text_format import summary_line
    from dllint.pipeline import apply_settings

    from_stdin = "-" in paths or (stdin_filename is not None and not paths)
    if from_stdin and len(paths) > 1:
        _fail("`-` (stdin) cannot be combined with other paths")
    if not paths and not from_stdin:
        _fail("no paths given; usage: dllint [OPTIONS] PATH...")
    targets = [stdin_filename or os.getcwd()] if from_stdin else list(paths)
    settings = _load_settings(targets, flags)
    if (fix or diff) and from_stdin:
        _fail("--fix and --diff work on files, not on stdin")
    cache = None if no_cache or from_stdin else ResultCache(os.path.join(settings.base_directory, CACHE_DIRECTORY))

    def lint_once():
        items, roots = _read_stdin(stdin_filename) if from_stdin else _read_files(paths, settings)
        result = lint_items(items, settings.active_codes, roots, jobs=jobs or usable_cores(), cache=cache)
        sources = {item.display_path: item.source for item in items}
        findings, silenced = apply_settings(result.findings, sources, settings, warn_unused_suppressions)
        return items, result, sources, findings, silenced if show_suppressed else []

    items, result, sources, findings, silenced = lint_once()
    if diff:
        changed = fixed_sources(findings, sources, unsafe_fixes)
        for path, text in sorted(changed.items()):
            click.echo("".join(difflib.unified_diff(sources[path].splitlines(True), text.splitlines(True),
                                                    f"a/{path}", f"b/{path}")), nl=False)
        click.echo(f"Would fix {len(changed)} file{'s' if len(changed) != 1 else ''}.", err=True)
        sys.exit(EXIT_FINDINGS if changed else EXIT_CLEAN)
    if fix:
        fixed_count = 0
        for _ in range(MAX_FIX_ROUNDS):  # a fix may make room for another one
            changed = fixed_sources(findings, sources, unsafe_fixes)
            if not changed:
                break
            for path, text in changed.items():
                with open(path, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
            fixed_count += sum(1 for f in findings if f.fix and f.path in changed and
                               (unsafe_fixes or f.fix["applicability"] == "safe"))
            items, result, sources, findings, silenced = lint_once()
        click.echo(f"Fixed {fixed_count} problem{'s' if fixed_count != 1 else ''}.", err=True)

    for notice in result.notices:
        click.echo(f"dllint: warning: {notice}", err=True)
    needs_root = output_format in ("sarif", "github", "gitlab")
    options = OutputOptions(
        show_source=show_source, color=output_format == "text" and _use_color(color_choice), sources=sources,
        repository_root=(repository_root(search_start(targets)) or os.getcwd()) if needs_root else None,
        suppressed=silenced, checked_paths=[item.display_path for item in items])
    infos = settings.rule_infos([r.info for r in registry.all_rules()])
    click.echo(get_formatter(output_format)(findings, infos, options), nl=False, color=options.color)
    files_with_findings = len({f.path for f in findings})
    click.echo(summary_line(len(findings), files_with_findings, result.files_checked, len(silenced)), err=True)
    sys.exit(EXIT_FINDINGS if findings else EXIT_CLEAN)


MAX_FIX_ROUNDS = 5


def fixed_sources(findings, sources, unsafe: bool) -> Dict[str, str]:
    """New text of every file that the applicable fixes change."""
    from dllint.fixes import SAFE, apply_edits

    by_path: Dict[str, list] = {}
    for finding in findings:
        if finding.fix and (unsafe or finding.fix["applicability"] == SAFE):
            by_path.setdefault(finding.path, []).append(finding.fix)
    changed = {}
    for path, fixes in by_path.items():
        text, applied = apply_edits(sources[path], fixes)
        if applied and text != sources[path]:
            changed[path] = text
    return changed


def _read_stdin(stdin_filename: Optional[str]):
    """The buffer on stdin as one loaded file, named after --stdin-filename (else `-`)."""
    from dllint.engine import display_path, load_source

    name = stdin_filename or "-"
    stream = getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read()
    if isinstance(data, str):  # a text-only stdin, as some embedders provide
        data = data.encode("utf-8")
    return [load_source(name, display_path(name) if stdin_filename else name, data)], \
        [os.path.dirname(os.path.abspath(name))]


def _read_files(paths: Sequence[str], settings):
    from dllint.discovery import PathError, discover_files
    from dllint.engine import display_path, load_source

    try:
        found = discover_files(paths, settings.exclude, settings.base_directory, settings.respect_gitignore)
    except PathError as error:
        _fail(str(error))
    return [load_source(path, display_path(path)) for path in found.files], found.roots


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
    for key in ("select", "per-file-ignores", "exclude", "severity", "respect-gitignore"):
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
    from dllint.cache import CACHE_DIRECTORY, clear

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
    """List every rule: code, name, severity, summary."""
    from dllint import registry

    infos = [r.info for r in registry.all_rules()]
    if output_format == "json":
        click.echo(json.dumps([{"code": i.code, "name": i.name, "severity": i.severity, "summary": i.summary}
                               for i in infos], indent=2))
        return
    name_width = max(len(i.name) for i in infos)
    for info in infos:
        click.echo(f"{info.code}  {info.name:<{name_width}}  {info.severity:<7}  {info.summary}")


@main.command("explain")
@click.argument("code")
def explain(code: str) -> None:
    """Print the page of rule CODE: why it is a bug, examples, the fix."""
    from dllint import registry
    from dllint.pages import read_page

    rule = registry.get_rule(code.strip().upper())
    if rule is None:
        _fail(f"unknown rule code: {code}")
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
