"""The layering stays honest: no torch on the static path, formatters and checks stay in their lanes."""

import ast
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "dllint")


def _imports(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(subpackage):
    folder = os.path.join(PACKAGE, subpackage)
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def test_a_full_lint_run_never_imports_torch(fixtures_command_line_run):
    run = fixtures_command_line_run
    assert json.loads(run.stdout), run.stderr  # it linted
    assert run.stderr.strip().endswith("torch imported: False"), run.stderr


def test_formatters_import_neither_checks_nor_libcst():
    for path in _modules("output"):
        for name in _imports(path):
            assert not name.startswith("dllint.checks") and not name.startswith("libcst"), (path, name)


def test_checks_define_no_visitors_and_stay_small():
    for path in _modules("checks"):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        assert "CSTVisitor" not in text and "CSTTransformer" not in text and ".visit(" not in text, path
        assert len(text.splitlines()) < 150, f"{path} is too long for one rule"


def test_model_knows_no_rule_codes():
    import re

    for path in _modules("model"):
        with open(path, encoding="utf-8") as handle:
            assert not re.search(r"DL\d{3}", handle.read()), path


def test_runtime_checks_are_one_module_each_named_by_their_codes_and_import_no_torch():
    code = ("import sys; from dllint.runtime.checks import check_classes\n"
            "print([(c.__module__, sorted(c.CODES) + sorted(getattr(c, 'RUNTIME_CODES', {}))) "
            "for c in check_classes()]); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    classes, torch_imported = result.stdout.strip().splitlines()
    assert torch_imported == "False"
    found = ast.literal_eval(classes)
    assert len({module for module, _ in found}) == len(found) >= 7
    for module, codes in found:
        # dllint.runtime.checks.dl101_dl102_..._training_loop: the codes it reports, then what it watches
        assert module.rsplit(".", 1)[1].startswith("_".join(code.lower() for code in codes) + "_"), (module, codes)


# Lower layers never import higher ones (function-level imports included): per-file analysis, then the
# project index, then the runner (chunks, workers, the result cache), then the entry points.
LAYERS = [
    ("per-file analysis", ["engine.py", "model", "checks", "context.py", "positions.py", "fixes.py",
                           "libcst_view.py", "notebook.py", "registry.py", "findings.py", "cache_folder.py"]),
    ("project index", ["index", "discovery.py", "config.py"]),
    ("runner", ["runner.py", "cache.py"]),
    ("entry points", ["cli.py", "lsp", "pipeline.py", "runtime"]),
]


def _module_name(relative):
    return "dllint." + relative[:-3].replace(os.sep, ".") if relative.endswith(".py") else "dllint." + relative


def _layer_of(module):
    for level, (_, members) in enumerate(LAYERS):
        for member in members:
            name = _module_name(member)
            if module == name or module.startswith(name + "."):
                return level
    return None


def test_layers_import_only_downwards():
    for level, (layer, members) in enumerate(LAYERS):
        for member in members:
            path = os.path.join(PACKAGE, member)
            paths = list(_modules(member)) if os.path.isdir(path) else [path]
            assert paths, member
            for module_path in paths:
                for name in _imports(module_path):
                    above = _layer_of(name)
                    assert above is None or above <= level, \
                        f"{os.path.relpath(module_path, PACKAGE)} ({layer}) imports {name} ({LAYERS[above][0]})"


def _is_name_list(value):
    """A literal collection of names (`{"view", "reshape"}`, `{"StepLR": "step_size"}`) or a regular
    expression over names (`re.compile(...)`)."""
    def is_text(node):
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    if isinstance(value, (ast.Set, ast.List, ast.Tuple)):
        return len(value.elts) >= 2 and all(is_text(e) for e in value.elts)
    if isinstance(value, ast.Dict):
        return bool(value.keys) and all(k is not None and is_text(k) and is_text(v)
                                        for k, v in zip(value.keys, value.values))
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "compile" \
        and isinstance(value.func.value, ast.Name) and value.func.value.id == "re"


def test_checks_keep_no_name_lists_of_their_own():
    """Every torch name and every name-based guess lives in dllint/model/torch_api.py: a check module
    defines no module-level list of names and no regular expression over names."""
    offenders = []
    for path in _modules("checks"):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                if isinstance(node, ast.AnnAssign) and node.value is not None else []
            if len(targets) == 1 and isinstance(targets[0], ast.Name) and _is_name_list(node.value):
                offenders.append(f"{os.path.relpath(path, ROOT)}: {targets[0].id}")
    assert not offenders, "move these to dllint/model/torch_api.py:\n" + "\n".join(offenders)
