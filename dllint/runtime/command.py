"""`dllint confirm`: run the training script under instrumentation and confirm the static findings.

Importing this module is cheap and never imports torch (dllint.cli registers the command at import).
"""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple

import click

EXIT_ERROR = 2


def _parse_shape(text: Optional[str]) -> Optional[List[int]]:
    if text is None:
        return None
    try:
        shape = [int(part) for part in text.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a shape like 8,3,32,32", param_hint="--input-shape")
    if not shape or any(n <= 0 for n in shape):
        raise click.BadParameter(f"{text!r} is not a shape like 8,3,32,32", param_hint="--input-shape")
    return shape


@click.command("confirm", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("script", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("-m", "module", metavar="MODULE", help="Run a module, like python -m MODULE.")
@click.option("--model", metavar="MODULE:FACTORY", help="Check a model without a script (needs --input-shape).")
@click.option("--input-shape", metavar="N,C,...", help="Input batch shape for --model, e.g. 8,3,32,32.")
@click.option("--classes", type=click.IntRange(min=2), help="Number of classes for --model (cross-entropy).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the --model loss curve and gradient norms "
              "as a picture (needs matplotlib).")
@click.option("--steps", type=click.IntRange(min=1), default=20, show_default=True,
              help="Optimizer steps to run (for --model: overfitting steps, default 100).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="cpu makes torch.cuda.is_available() false and maps .cuda()/.to('cuda') to the CPU.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds for the whole check, static analysis included.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def confirm(ctx: click.Context, script: Optional[str], script_args: Tuple[str, ...], module: Optional[str],
            model: Optional[str], input_shape: Optional[str], classes: Optional[int], plot: Optional[str],
            steps: int, device: str, timeout: float, output_format: str) -> None:
    """Execute SCRIPT (or -m MODULE) for a few optimizer steps and confirm the static findings.

    Your code runs, as `python SCRIPT` would run it (whatever it writes or deletes, it does), offline,
    under instrumentation, and is stopped after --steps optimizer steps or --timeout seconds (static
    analysis included). Arguments after `--` go to the script. Exit status: 0 nothing confirmed or found, 1 something
    confirmed or found, 2 the script could not be run.
    """
    from dllint.runtime.report import format_json, format_text, summary_line
    from dllint.runtime.process.session import ConfirmError, ConfirmRequest, confirm as run_confirm

    if module and script is not None:
        script_args = (script, *script_args)
        script = None
    chosen = [name for name, value in (("SCRIPT", script), ("-m", module), ("--model", model)) if value]
    if len(chosen) != 1:
        _fail("give exactly one of SCRIPT, -m MODULE or --model MODULE:FACTORY")
    if model and script_args:
        _fail("--model takes no script arguments")
    steps_given = ctx.get_parameter_source("steps") == click.core.ParameterSource.COMMANDLINE
    request = ConfirmRequest(script=script, module=module, model=model, args=list(script_args),
                             steps=steps if (steps_given or not model) else 0, device=device, timeout=timeout,
                             input_shape=_parse_shape(input_shape), classes=classes, plot=plot)
    try:
        result = run_confirm(request, progress_fd=_progress_fd())
    except ConfirmError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        click.echo("dllint: interrupted", err=True)
        sys.exit(130)
    if output_format == "json":
        click.echo(format_json(result), nl=False)
    else:
        click.echo(format_text(result), nl=False)
    click.echo(summary_line(result), err=True)
    sys.exit(result.exit_status)


def _progress_fd() -> Optional[int]:
    try:
        sys.stderr.flush()
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _fail(message: str) -> None:
    click.echo(f"dllint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)
