"""DL502: a trainable tensor stored on a module without nn.Parameter is never optimised."""

import libcst as cst

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.registry import rule


@rule("DL502")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # tests build modules with plain tensors on purpose (e.g. to test a summary tool)
    analysis = ctx.analysis
    for cls, attribute, scope, definition in analysis.module_attributes(ctx.file):
        value = definition.value
        if scope.name != "__init__" or not isinstance(value, cst.Call) or definition.unpack_path:
            continue
        if _tensor_factory(analysis, value, scope) is None or _rewrapped_later(analysis, cls, attribute, definition):
            continue
        if _requests_grad(value) or (api.WEIGHT_NAME.search(attribute) and not _registers_explicitly(cls)):
            ctx.report(value, f"self.{attribute} is a plain tensor, not an nn.Parameter: it is not in "
                              f"model.parameters(), so the optimizer never updates it (and .to(device) "
                              f"and state_dict skip it); wrap it in nn.Parameter(...) or, for a constant, "
                              f"use self.register_buffer.")


def _requests_grad(call: cst.Call) -> bool:
    if any(a.keyword is not None and a.keyword.value == "requires_grad" and
           isinstance(a.value, cst.Name) and a.value.value == "True" for a in call.args):
        return True
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_"


def _tensor_factory(analysis, call: cst.Call, scope):
    """The torch factory building this value (looking through .requires_grad_(), .to(), .cuda())."""
    while isinstance(call.func, cst.Attribute) and call.func.attr.value in ("requires_grad_", "to", "cuda", "float",
                                                                             "double", "normal_", "uniform_"):
        if not isinstance(call.func.value, cst.Call):
            return None
        call = call.func.value
    return analysis.torch_member(call.func, scope, api.TENSOR_FACTORIES)


def _registers_explicitly(cls) -> bool:
    """A class that calls register_buffer/register_parameter keeps plain tensors on purpose."""
    return any(call.method in ("register_buffer", "register_parameter")
               for scope in cls.methods.values() for call in scope.calls)


def _rewrapped_later(analysis, cls, attribute, definition) -> bool:
    """`self.w = torch.empty(...)`, init, then `self.w = nn.Parameter(self.w)`: registered in the end."""
    for scope, later in cls.attributes.get(attribute, []):
        if later.order > definition.order and isinstance(later.value, cst.Call) and \
                analysis.torch_member(later.value.func, scope, api.PARAMETER_CLASSES):
            return True
    return False
