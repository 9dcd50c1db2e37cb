"""The command line: `dllint PATH...`, `dllint check`, `dllint list-rules`, `dllint explain`."""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Tuple

import click

from dllint import __version__

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split_codes(values: Tuple[str, ...]) -> List[str]:
    return [code.strip() for value in values for code in value.split(",") if code.strip()]


class DefaultToCheck(click.Group):
    """`dllint PATH` means `dllint check PATH`; an existing path wins over a subcommand name."""

    def parse_args(self, ctx: click.Context, args: List[str]) -> List[str]:
        if args and args[0] not in ("--help", "-h", "--version"):
            first = args[0]
            if first not in self.commands or os.path.exists(first):
                args = ["check", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dllint", message="%(prog)s %(version)s")
def main() -> None:
    """dllint: finds the silent bugs of PyTorch training code.

    Run `dllint PATH...` to lint files and directories.
    """


@main.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", multiple=True, metavar="CODES", help="Comma-separated codes or prefixes to enable.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Comma-separated codes or prefixes to disable.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip files and directories matching GLOB.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def check(paths: Tuple[str, ...], select, ignore, exclude, output_format: str) -> None:
    """Lint PATHS (files or directories) for PyTorch training bugs."""
    from dllint import registry
    from dllint.discovery import PathError
    from dllint.engine import lint_paths
    from dllint.output import get_formatter
    from dllint.output.text_format import summary_line

    if not paths:
        _fail("no paths given; usage: dllint [OPTIONS] PATH...")
    try:
        codes = registry.select_codes(_split_codes(select), _split_codes(ignore))
    except registry.UnknownCodeError as error:
        _fail(str(error))
    try:
        result = lint_paths(paths, codes, exclude)
    except PathError as error:
        _fail(str(error))
    for notice in result.notices:
        click.echo(f"dllint: warning: {notice}", err=True)
    infos = [r.info for r in registry.all_rules()]
    click.echo(get_formatter(output_format)(result.findings, infos), nl=False)
    click.echo(summary_line(len(result.findings), result.files_with_findings, result.files_checked), err=True)
    sys.exit(EXIT_FINDINGS if result.findings else EXIT_CLEAN)


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


if __name__ == "__main__":
    main()

from dllint.runtime.command import confirm  # noqa: E402  (the runtime mode; imports no torch)
main.add_command(confirm)
