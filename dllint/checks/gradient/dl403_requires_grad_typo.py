"""DL403: a misspelt requires_grad silently creates a new attribute or keyword."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import SAFE, Fix
from dllint.model import torch_api as api
from dllint.registry import rule


@rule("DL403")
def check(ctx: CheckContext) -> None:
    for node, name, _scope in ctx.file.requires_grad_typos:
        correct = api.REQUIRES_GRAD_TYPOS[name]
        fix = Fix(SAFE, f"rename to {correct}", node, cst.Name(correct))
        ctx.report(node, f"'{name}' is not a PyTorch attribute: Python silently creates a new attribute (or the "
                         f"keyword is ignored or rejected), so gradients are not switched as intended; "
                         f"write '{correct}'.", fix=fix)
