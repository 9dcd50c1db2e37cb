"""Text and JSON output of `dllint confirm`. Plain data in, text out."""

from __future__ import annotations

import json
from typing import List

from dllint.runtime.observations import CONFIRMED, NOT_CHECKED, NOT_REACHED, NOT_REPRODUCED
from dllint.runtime.process.session import ConfirmResult, findings_in_traceback

STATUS_TEXT = {
    "finished": "ran to its end",
    "stopped": "was stopped after the step budget",
    "timeout": "was stopped at the timeout",
    "crashed": "crashed",
    "exited": "exited with an error status",
    "error": "could not be run",
    "running": "was killed while running",
}


def format_text(result: ConfirmResult) -> str:
    outcome = result.outcome
    lines: List[str] = []
    for judged in result.findings:
        f = judged.finding
        lines.append(f"{f.path}:{f.line}:{f.column}: {f.code} [{f.name}] {judged.verdict}: {judged.evidence}")
    if result.runtime_findings:
        lines.append("runtime findings:")
        for judged in result.runtime_findings:
            f = judged.finding
            lines.append(f"{f.path}:{f.line}:{f.column}: {f.code} [{f.name}] {f.severity}: {f.message}")
    for note in outcome.notes:
        lines.append(f"note: {note}")
    if outcome.status in ("crashed", "exited", "error", "running"):
        lines.extend(_failure_lines(result))
    return "".join(line + "\n" for line in lines)


def _failure_lines(result: ConfirmResult) -> List[str]:
    outcome = result.outcome
    lines = []
    if outcome.status == "exited":
        lines.append(f"the script exited with status {outcome.exit_code} after {outcome.steps} steps")
    elif outcome.status == "error":
        lines.append(f"the script could not be run: {outcome.error}")
    if outcome.traceback:
        lines.append("traceback (the script's frames):")
        lines.extend("  " + line for line in outcome.traceback.splitlines())
        explaining = findings_in_traceback(result)
        if explaining:
            lines.append("static findings that may explain the crash (on its lines, or known to cause its error):")
            lines.extend(f"  {f.path}:{f.line}:{f.column}: {f.code} [{f.name}] {f.message}" for f in explaining)
    if result.stderr_tail and not outcome.traceback:
        lines.append("the script's stderr (last lines):")
        lines.extend("  " + line for line in result.stderr_tail.splitlines())
    if result.stdout_tail and outcome.status != "crashed":
        lines.append("the script's stdout (last lines):")
        lines.extend("  " + line for line in result.stdout_tail.splitlines())
    return lines


def summary_line(result: ConfirmResult) -> str:
    outcome = result.outcome
    counts = {verdict: sum(1 for j in result.findings if j.verdict == verdict)
              for verdict in (CONFIRMED, NOT_REPRODUCED, NOT_REACHED, NOT_CHECKED)}
    runtime = sum(1 for j in result.runtime_findings if j.finding.severity != "info")
    info = len(result.runtime_findings) - runtime
    status = STATUS_TEXT.get(outcome.status, outcome.status)
    parts = [f"{counts[v]} {v.lower()}" for v in counts if counts[v]] or ["no static findings"]
    runtime_text = f"{runtime} runtime finding{'s' if runtime != 1 else ''}"
    if info:
        runtime_text += f" (+{info} info)"
    return (f"dllint confirm: {result.target} {status} ({outcome.steps} optimizer steps, {outcome.seconds:.1f} s, "
            f"{outcome.device or 'cpu'}); {', '.join(parts)}; {runtime_text}.")


def format_json(result: ConfirmResult) -> str:
    outcome = result.outcome.to_dict()
    outcome.pop("reached", None)
    data = {
        "target": result.target,
        "run": outcome,
        "findings": [j.to_dict() for j in result.findings],
        "runtime_findings": [j.to_dict() for j in result.runtime_findings],
        "exit_status": result.exit_status,
    }
    if result.outcome.status in ("crashed", "exited", "error", "running"):
        data["output_tail"] = {"stdout": result.stdout_tail, "stderr": result.stderr_tail}
    return json.dumps(data, indent=2) + "\n"
