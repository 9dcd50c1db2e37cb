"""DL505: model.forward(x) skips the hooks that model(x) runs."""

import libcst as cst

from dllint.context import CheckContext
from dllint.fixes import SAFE, Fix
from dllint.model.facts import ClassFacts
from dllint.model.project import instance_name
from dllint.model.wrappers import bypassed_by_forward
from dllint.registry import rule


@rule("DL505")
def check(ctx: CheckContext) -> None:
    if ctx.in_test_file:
        return  # tests call forward() on purpose, to exercise it without hooks or wrappers
    analysis = ctx.analysis
    for scope in ctx.scopes:
        own = instance_name(scope)
        for call in scope.calls:
            if call.method != "forward" or call.receiver_text is None or call.receiver_text == own:
                continue
            if not call.node.args:
                continue  # a module's forward takes its input; net.forward() is OpenCV's dnn.Net or an RPC handle
            receiver = call.node.func.value
            if isinstance(ctx.project.resolve_name(receiver, scope.file), ClassFacts) or \
                    analysis.qualify(receiver, scope) is not None:
                continue  # Base.forward(self, x): an explicit call of the parent implementation
            instances = analysis.instances(receiver, scope, call.order)
            if instances and all(_not_a_module(analysis, i) for i in instances):
                continue  # some other class that happens to have a forward method (e.g. an RPC RemoteModule)
            if not instances and not analysis.is_model_expr(receiver, scope, call.order) and \
                    not _wrapped_module(analysis, receiver, scope, call.order):
                continue
            # Only where something is really skipped: without hooks or a wrapper, forward() is the same call.
            skipped = bypassed_by_forward(analysis, receiver, scope, call.order)
            if not skipped:
                continue
            ctx.report(call.node, f"{call.receiver_text}.forward(...) bypasses nn.Module.__call__ and with it "
                                  f"{skipped}; call {call.receiver_text}(...) instead.",
                       fix=Fix(SAFE, f"call {call.receiver_text}(...)", call.node, call.node.with_changes(func=receiver)))


def _not_a_module(analysis, instance) -> bool:
    if instance.project_class is not None:
        return not analysis.is_module_class(instance.project_class)
    return bool(instance.torch_class) and not instance.torch_class.startswith("torch.nn")


def _wrapped_module(analysis, receiver, scope, order) -> bool:
    """`model.module`: the module inside a DDP/DataParallel wrapper."""
    return isinstance(receiver, cst.Attribute) and receiver.attr.value == "module" and \
        analysis.is_model_expr(receiver.value, scope, order)
