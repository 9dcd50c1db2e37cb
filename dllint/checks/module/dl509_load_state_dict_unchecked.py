"""DL509: load_state_dict(strict=False) whose missing and unexpected keys are never looked at."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model.builder import descendants, dotted_name
from dllint.model.syntax import enclosing_statement
from dllint.registry import rule


@rule("DL509")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # tests load partial states on purpose and assert on the model afterwards
    for scope in ctx.file.scopes_mentioning(("load_state_dict",)):
        for call in scope.calls:
            if call.method != "load_state_dict" or not _strict_false(call.node):
                continue
            if _matched_against_own_keys(ctx, call):
                continue  # intersect_dicts(ckpt, model.state_dict()): the author compared the keys already
            statement = enclosing_statement(scope.node, call.node)
            if statement is None or len(statement.body) != 1:
                continue  # inside an `if`/`assert` test or a compound line: looked at
            small = statement.body[0]
            if isinstance(small, cst.Expr) and small.value is call.node:
                unchecked = True
            elif isinstance(small, cst.Assign) and small.value is call.node:
                unchecked = _result_names_unread(scope, small)
            else:
                unchecked = False  # print(...), logger.info(...), return ...: the result is used
            if unchecked:
                receiver = call.receiver_text or "the model"
                ctx.report(call.node, f"{receiver}.load_state_dict(..., strict=False) discards the list of missing "
                                      f"and unexpected keys, so a renamed or missing layer silently keeps its random "
                                      f"initialization; check the result (missing, unexpected = ...) or load with "
                                      f"strict=True.")


def _strict_false(call: cst.Call) -> bool:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "strict":
            return isinstance(arg.value, cst.Name) and arg.value.value == "False"
    return False


def _matched_against_own_keys(ctx: CheckContext, call) -> bool:
    """Is the loaded dict computed from the receiver's own `state_dict()` (directly, or in a comprehension
    that filters the checkpoint by it)?"""
    if not call.node.args or call.receiver_text is None:
        return False
    pending, seen = [(call.node.args[0].value, call.scope, call.order)], 0
    while pending and seen < 8:
        seen += 1
        for node, scope, order in ctx.analysis.dependencies(*pending.pop()):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
                    node.func.attr.value == "state_dict" and dotted_name(node.func.value) == call.receiver_text:
                return True
            if isinstance(node, (cst.DictComp, cst.ListComp, cst.GeneratorExp)):
                pending.extend((n, scope, order) for n in descendants(node) if isinstance(n, cst.Name))
    return False


def _result_names_unread(scope, assign: cst.Assign) -> bool:
    """`msg = model.load_state_dict(...)` where `msg` (or `missing`, `unexpected`) is never read."""
    names = []
    for target in assign.targets:
        values = [e.value for e in target.target.elements] if isinstance(target.target, (cst.Tuple, cst.List)) \
            else [target.target]
        for value in values:
            if not isinstance(value, cst.Name):
                return False  # self.load_result = ...: kept for later
            names.append(value.value)
    if all(name == "_" for name in names):
        return False  # an explicit discard
    written = {name: len(scope.definitions.get(name, [])) for name in names}
    mentions = dict.fromkeys(names, 0)
    for node in descendants(scope.node):
        if isinstance(node, cst.Name) and node.value in mentions:
            mentions[node.value] += 1
    return all(mentions[name] <= written[name] for name in names if name != "_")
