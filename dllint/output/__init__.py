"""Formatters: plain findings and rule metadata in, text out. They know nothing of checks or libcst."""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

from dllint.findings import Finding, RuleInfo

Formatter = Callable[[Sequence[Finding], Sequence[RuleInfo]], str]


def _load() -> Dict[str, Formatter]:
    from dllint.output import json_format, text_format

    return {"text": text_format.format_findings, "json": json_format.format_findings}


FORMAT_NAMES: List[str] = ["text", "json"]


def get_formatter(name: str) -> Formatter:
    return _load()[name]
