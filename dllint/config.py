"""Settings: `[tool.dllint]` in pyproject.toml, overridden by command-line flags.

The file is found by walking up from the linted paths; `--config PATH` names it and `--isolated`
ignores it. A bad file is a ConfigError whose text is one line: `file:line: key: what is wrong`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from dllint.findings import SEVERITIES, Finding, RuleInfo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on old interpreters
    import tomli as tomllib

CONFIG_FILE_NAME = "pyproject.toml"

# Directories nobody wants linted; `exclude` in the file replaces this list, `extend-exclude` adds to it.
DEFAULT_EXCLUDES = (".git", ".hg", ".svn", ".venv", "venv", "env", "build", "dist", "__pycache__",
                    "node_modules", ".tox", ".eggs", ".nox", ".mypy_cache", ".pytest_cache", ".dllint_cache")

_CODE_LIST_KEYS = ("select", "ignore", "extend-select")
_GLOB_LIST_KEYS = ("exclude", "extend-exclude")
_BOOLEAN_KEYS = ("respect-gitignore", "force-exclude", "warn-unused-suppressions")
KNOWN_KEYS = (*_CODE_LIST_KEYS, "per-file-ignores", *_GLOB_LIST_KEYS, "severity", *_BOOLEAN_KEYS)

# The engine's own diagnostics (parse error, unused suppression, internal error) stay on whatever is
# selected, unless a code is ignored explicitly: they say that the other rules could not do their job.
ENGINE_CODES = ("DL000", "DL998", "DL999")


class ConfigError(Exception):
    """A configuration problem, worded as one line for the user."""


@dataclass
class Layer:
    """Settings from one place (the file, or the command line); None/empty means `not set here`."""

    select: Optional[List[str]] = None
    extend_select: List[str] = field(default_factory=list)
    ignore: List[str] = field(default_factory=list)
    per_file_ignores: Dict[str, List[str]] = field(default_factory=dict)
    exclude: Optional[List[str]] = None
    extend_exclude: List[str] = field(default_factory=list)
    severity: Dict[str, str] = field(default_factory=dict)
    respect_gitignore: Optional[bool] = None
    force_exclude: Optional[bool] = None
    warn_unused_suppressions: Optional[bool] = None


@dataclass
class Settings:
    """The effective settings of a run, with every code pattern expanded to codes."""

    config_path: Optional[str]
    base_directory: str  # globs in per-file-ignores and exclude are relative to it
    active_codes: List[str]
    per_file_ignores: List[Tuple[str, List[str]]]
    exclude: List[str]
    severity: Dict[str, str]  # only the codes whose severity differs from the rule's default
    respect_gitignore: bool
    # Excludes apply to paths named on the command line too (pre-commit names every file it checks).
    force_exclude: bool = False
    warn_unused_suppressions: bool = False

    def ignored_codes_for(self, path: str) -> Tuple[List[str], List[str]]:
        """(codes, patterns) that per-file-ignores switch off for `path`."""
        from dllint.discovery import path_matches

        codes: List[str] = []
        patterns: List[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            if path_matches(pattern, path, self.base_directory):
                codes.extend(pattern_codes)
                patterns.append(pattern)
        return codes, patterns

    def adjusted(self, finding: Finding) -> Finding:
        """`finding` with the severity the settings give its code."""
        level = self.severity.get(finding.code)
        return replace(finding, severity=level) if level else finding

    def rule_infos(self, infos: Iterable[RuleInfo]) -> List[RuleInfo]:
        return [replace(info, severity=self.severity.get(info.code, info.severity)) for info in infos]


# ---------------------------------------------------------------- finding and reading the file


def _display(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def search_start(paths: Sequence[str]) -> str:
    """The directory the search for pyproject.toml starts from: the common ancestor of `paths`."""
    directories = []
    for path in paths:
        absolute = os.path.abspath(path)
        directories.append(absolute if os.path.isdir(absolute) else os.path.dirname(absolute))
    if not directories:
        return os.getcwd()
    try:
        return os.path.commonpath(directories)
    except ValueError:  # paths on different drives
        return os.getcwd()


def find_config_file(start: str) -> Optional[str]:
    """The nearest pyproject.toml at or above `start` that has a [tool.dllint] table."""
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, CONFIG_FILE_NAME)
        if os.path.isfile(candidate) and _declares_dllint(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _declares_dllint(path: str) -> bool:
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # A broken pyproject.toml that is ours is an error; someone else's broken file is not our business.
        if re.search(r"""tool\s*\.\s*["']?dllint""", text):
            raise _syntax_error(path, text, error) from None
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "dllint" in tool


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ConfigError(f"{_display(path)}: cannot read configuration: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{_display(path)}:{line}: configuration is not valid UTF-8") from None


def _syntax_error(path: str, text: str, error: Exception) -> ConfigError:
    message = str(error)
    line = getattr(error, "lineno", None)
    column = getattr(error, "colno", None)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if where:
        line = line or int(where.group(1))
        column = column or int(where.group(2))
        message = message[: where.start()]
    elif message.endswith("(at end of document)"):
        line = line or text.count("\n") + 1
        message = message[: -len("(at end of document)")].rstrip()
    lines = text.splitlines()
    key = None
    if line and line <= len(lines):
        # Name the key only when the error lies in its value: `Unclosed array` is reported on the line
        # after the array, whose own key is innocent.
        assignment = _ASSIGNMENT.match(lines[line - 1])
        if assignment and column and column > assignment.end():
            key = _dotted(_key_parts(assignment.group(1)))
    parts = [f"{_display(path)}:{line}" if line else _display(path)]
    if key:
        parts.append(key)
    detail = f"TOML syntax error: {message}" + (f" (column {column})" if column else "")
    return ConfigError(": ".join(parts + [detail]))


def load_file_layer(path: str, explicit: bool) -> Tuple[Layer, str]:
    """Read and validate one configuration file; returns (settings layer, directory of the file)."""
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(path, text, error) from None
    # pyproject.toml keeps our settings under [tool.dllint]; a file of our own (--config dllint.toml)
    # holds them at the top level.
    if os.path.basename(path) == CONFIG_FILE_NAME:
        prefix = ("tool", "dllint")
        tool = data.get("tool", {})
        table = tool.get("dllint") if isinstance(tool, dict) else None
        if table is None:
            if explicit:
                raise ConfigError(f"{_display(path)}: has no [tool.dllint] table")
            table = {}
    else:
        prefix = ()
        table = data
    validator = _Validator(path, text, prefix)
    return validator.layer(table), os.path.dirname(os.path.abspath(path))


# ---------------------------------------------------------------- validation


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


_BARE_OR_QUOTED_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY = rf"{_BARE_OR_QUOTED_KEY}(?:\s*\.\s*{_BARE_OR_QUOTED_KEY})*"
_ASSIGNMENT = re.compile(rf"^\s*({_DOTTED_KEY})\s*=")
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?$")


def _key_parts(dotted: str) -> List[str]:
    parts = []
    for match in re.finditer(_BARE_OR_QUOTED_KEY, dotted):
        token = match.group(0)
        parts.append(token[1:-1] if token[0] in "\"'" else token)
    return parts


def _dotted(parts: Sequence[str]) -> str:
    """Key parts written back as a TOML dotted key, quoting the parts that need it."""
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part) for part in parts)


def locate_key(text: str, key_path: Sequence[str]) -> Optional[int]:
    """1-based line where `key_path` is written (or its nearest written parent), by a light scan of
    the TOML text: tomllib keeps no positions."""
    target = list(key_path)
    table: List[str] = []
    best: Optional[int] = None
    best_depth = -1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _key_parts(header.group(1))
            candidate = table
        else:
            assignment = _ASSIGNMENT.match(line)
            if not assignment:
                continue
            candidate = table + _key_parts(assignment.group(1))
            rest = target[len(candidate):]
            # An inline table that holds the key: `severity = { DL401 = "info" }`.
            if candidate == target[: len(candidate)] and rest and rest[0] in line[assignment.end():]:
                return number
        if candidate == target:
            return number
        if candidate == target[: len(candidate)] and len(candidate) > best_depth:
            best, best_depth = number, len(candidate)
    return best


class _Validator:
    def __init__(self, path: str, text: str, prefix: Tuple[str, ...]) -> None:
        self.path = path
        self.text = text
        self.prefix = prefix

    def fail(self, keys: Sequence[str], message: str, value: Optional[str] = None) -> ConfigError:
        full = [*self.prefix, *keys]
        line = locate_key(self.text, full)
        if line is not None and value is not None:
            line = _value_line(self.text, line, value) or line
        where = f"{_display(self.path)}:{line}" if line else _display(self.path)
        return ConfigError(f"{where}: {_dotted(full)}: {message}")

    def layer(self, table: Any) -> Layer:
        if not isinstance(table, dict):
            raise self.fail([], f"expected a table, got {_toml_type(table)}")
        layer = Layer()
        for key, value in table.items():
            if key not in KNOWN_KEYS:
                import difflib

                close = difflib.get_close_matches(key.replace("_", "-"), KNOWN_KEYS, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(KNOWN_KEYS)}"
                raise self.fail([key], f"unknown key{hint}")
        if "select" in table:
            layer.select = self.codes(["select"], table["select"])
        if "extend-select" in table:
            layer.extend_select = self.codes(["extend-select"], table["extend-select"])
        if "ignore" in table:
            layer.ignore = self.codes(["ignore"], table["ignore"])
        if "exclude" in table:
            layer.exclude = self.strings(["exclude"], table["exclude"])
        if "extend-exclude" in table:
            layer.extend_exclude = self.strings(["extend-exclude"], table["extend-exclude"])
        if "per-file-ignores" in table:
            value = self.table(["per-file-ignores"], table["per-file-ignores"])
            layer.per_file_ignores = {glob: self.codes(["per-file-ignores", glob], codes)
                                      for glob, codes in value.items()}
        if "severity" in table:
            value = self.table(["severity"], table["severity"])
            for code, level in value.items():
                try:
                    expand_codes([code])
                except UnknownCodeError as error:
                    raise self.fail(["severity", code], str(error)) from None
                if level not in SEVERITIES:
                    shown = repr(level) if isinstance(level, str) else _toml_type(level)
                    raise self.fail(["severity", code], f"expected one of {', '.join(SEVERITIES)}, got {shown}")
            layer.severity = dict(value)
        for key in _BOOLEAN_KEYS:
            if key in table:
                value = table[key]
                if not isinstance(value, bool):
                    raise self.fail([key], f"expected a boolean, got {_toml_type(value)}")
                setattr(layer, key.replace("-", "_"), value)
        return layer

    def table(self, keys: List[str], value: Any) -> Dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keys, f"expected a table, got {_toml_type(value)}")
        return value

    def strings(self, keys: List[str], value: Any) -> List[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            got = _toml_type(value) if not isinstance(value, list) else "an array with a non-string item"
            raise self.fail(keys, f"expected an array of strings, got {got}")
        return list(value)

    def codes(self, keys: List[str], value: Any) -> List[str]:
        patterns = self.strings(keys, value)
        for pattern in patterns:
            try:
                expand_codes([pattern])
            except UnknownCodeError as error:
                raise self.fail(keys, str(error), value=pattern) from None
        return patterns


def _value_line(text: str, key_line: int, value: str) -> Optional[int]:
    """The line of `value` inside the array that starts on `key_line` (arrays often span lines)."""
    lines = text.splitlines()
    quoted = re.compile(r"""["']""" + re.escape(value) + r"""["']""")
    for number in range(key_line, len(lines) + 1):
        line = lines[number - 1]
        if quoted.search(line):
            return number
        if "]" in line.split("#", 1)[0]:
            return None
    return None


# ---------------------------------------------------------------- resolving codes


class UnknownCodeError(ValueError):
    pass


def all_codes() -> List[str]:
    from dllint import registry

    return [r.code for r in registry.all_rules()]


def codes_by_name() -> Dict[str, str]:
    """Every rule's name (`missing-zero-grad`) and the code it stands for."""
    from dllint import registry

    return {r.info.name: r.code for r in registry.all_rules()}


def rule_code(text: str) -> Optional[str]:
    """The code that `text` names, written as a code (`dl101` too) or as a rule name; else None."""
    from dllint import registry

    text = text.strip()
    by_name = codes_by_name()
    if text.lower() in by_name:
        return by_name[text.lower()]
    rule = registry.get_rule(text.upper())
    return rule.code if rule is not None else None


def _suggestion(pattern: str) -> str:
    names = list(codes_by_name())
    import difflib

    close = difflib.get_close_matches(pattern.lower(), names, n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""


def expand_codes(patterns: Iterable[str]) -> List[str]:
    """Codes matched by codes, prefixes (`DL1`), rule names (`missing-zero-grad`) or `ALL`; an
    unmatched pattern is an error."""
    codes = all_codes()
    by_name = codes_by_name()
    matched: List[str] = []
    for written in patterns:
        written = written.strip()
        if not written:
            continue
        if written.lower() in by_name:
            matched.append(by_name[written.lower()])
            continue
        pattern = written.upper()
        if pattern == "ALL":
            matched.extend(codes)
            continue
        hits = [c for c in codes if c.startswith(pattern)]
        if not hits:
            raise UnknownCodeError(f"unknown rule code or prefix: {written}{_suggestion(written)}")
        matched.extend(hits)
    return matched


def default_codes() -> List[str]:
    """The codes a run checks when no `select` is given: every rule but the opt-in ones."""
    from dllint import registry

    return [r.code for r in registry.all_rules() if r.info.default]


def resolve(layers: Sequence[Layer], config_path: Optional[str], base_directory: str) -> Settings:
    """Combine layers, later ones overriding earlier ones, the way ruff does: the default selection
    to start with, a `select` in a later layer starts over, `extend-select` adds, `ignore` removes.
    A code, prefix, name or `ALL` in `select`/`extend-select` selects every rule it matches, opt-in
    rules included (as ruff's `select = ["E"]` runs E501, which its default leaves out)."""
    active = set(default_codes())
    explicitly_ignored: set = set()
    for layer in layers:
        if layer.select is not None:
            active = set(expand_codes(layer.select))
        active |= set(expand_codes(layer.extend_select))
        ignored = set(expand_codes(layer.ignore))
        active -= ignored
        explicitly_ignored |= ignored
    active |= set(ENGINE_CODES) - explicitly_ignored

    per_file: Dict[str, List[str]] = {}
    for layer in layers:
        for glob, patterns in layer.per_file_ignores.items():
            per_file[glob] = sorted(set(expand_codes(patterns)))

    exclude: List[str] = list(DEFAULT_EXCLUDES)
    for layer in layers:
        if layer.exclude is not None:
            exclude = list(layer.exclude)
    for layer in layers:
        exclude.extend(layer.extend_exclude)

    from dllint import registry

    defaults = {r.code: r.info.severity for r in registry.all_rules()}
    severity: Dict[str, str] = {}
    for layer in layers:
        # A longer pattern is more specific and wins over a prefix in the same layer.
        for pattern in sorted(layer.severity, key=len):
            for code in expand_codes([pattern]):
                severity[code] = layer.severity[pattern]
    severity = {code: level for code, level in severity.items() if level != defaults.get(code)}

    # Later layers win; a flag left unset keeps the value below it.
    switches = {"respect_gitignore": True, "force_exclude": False, "warn_unused_suppressions": False}
    for layer in layers:
        for key in switches:
            if getattr(layer, key) is not None:
                switches[key] = getattr(layer, key)

    return Settings(config_path=config_path, base_directory=base_directory, active_codes=sorted(active),
                    per_file_ignores=list(per_file.items()), exclude=exclude, severity=severity, **switches)


def load_settings(paths: Sequence[str], command_line: Layer, config_file: Optional[str] = None,
                  isolated: bool = False) -> Settings:
    """The effective settings for linting `paths`: the file (found or named), then the flags."""
    layers: List[Layer] = []
    config_path: Optional[str] = None
    base_directory = os.getcwd()
    if not isolated:
        if config_file is not None:
            if not os.path.isfile(config_file):
                raise ConfigError(f"{config_file}: configuration file not found")
            config_path = os.path.abspath(config_file)
        else:
            config_path = find_config_file(search_start(paths))
        if config_path is not None:
            file_layer, base_directory = load_file_layer(config_path, explicit=config_file is not None)
            layers.append(file_layer)
    layers.append(command_line)
    return resolve(layers, config_path, base_directory)


def command_line_layer(select: Optional[List[str]], extend_select: List[str], ignore: List[str],
                       exclude: List[str], per_file_ignores: Sequence[str], severity: Sequence[str],
                       respect_gitignore: Optional[bool], force_exclude: Optional[bool] = None,
                       warn_unused_suppressions: Optional[bool] = None) -> Layer:
    """The flags as a layer. `--per-file-ignores GLOB:CODES`, `--severity CODE=LEVEL`; unknown codes
    are reported here, with the flag that holds them."""
    layer = Layer(select=select, extend_select=extend_select, ignore=ignore, extend_exclude=list(exclude),
                  respect_gitignore=respect_gitignore, force_exclude=force_exclude,
                  warn_unused_suppressions=warn_unused_suppressions)
    try:
        expand_codes([*(select or []), *extend_select, *ignore])
    except UnknownCodeError as error:
        raise ConfigError(str(error)) from None
    for entry in per_file_ignores:
        glob, separator, codes = entry.rpartition(":")
        if not separator or not glob:
            raise ConfigError(f"--per-file-ignores: expected GLOB:CODES, got {entry!r}")
        patterns = [c.strip() for c in codes.split(",") if c.strip()]
        try:
            expand_codes(patterns)
        except UnknownCodeError as error:
            raise ConfigError(f"--per-file-ignores: {error}") from None
        layer.per_file_ignores[glob] = patterns
    for entry in severity:
        code, separator, level = entry.partition("=")
        level = level.strip().lower()
        if not separator or level not in SEVERITIES:
            raise ConfigError(f"--severity: expected CODE=error|warning|info, got {entry!r}")
        try:
            expand_codes([code])
        except UnknownCodeError as error:
            raise ConfigError(f"--severity: {error}") from None
        layer.severity[code.strip().upper()] = level
    return layer


def describe(settings: Settings) -> Dict[str, Any]:
    """The effective settings as plain data, for `dllint config`."""
    return {
        "config-file": settings.config_path,
        "base-directory": settings.base_directory,
        "select": settings.active_codes,
        "per-file-ignores": {glob: codes for glob, codes in settings.per_file_ignores},
        "exclude": settings.exclude,
        "severity": settings.severity,
        "respect-gitignore": settings.respect_gitignore,
        "force-exclude": settings.force_exclude,
        "warn-unused-suppressions": settings.warn_unused_suppressions,
    }
