"""DL506: an nn.Module subclass assigns attributes before calling super().__init__()."""

from dllint.context import CheckContext
from dllint.model import torch_api as api
from dllint.registry import rule


@rule("DL506")
def check(ctx: CheckContext) -> None:
    analysis = ctx.analysis
    for cls in ctx.file.all_class_list:
        init = cls.methods.get("__init__")
        if init is None or not analysis.is_module_class(cls):
            continue
        assignments = sorted((d for defs in cls.attributes.values() for s, d in defs if s is init),
                             key=lambda d: d.order)
        parent_init = [c for c in init.calls if c.method == "__init__"]
        registrations = [c for c in init.calls if c.method in api.REGISTERING_METHODS and
                         c.receiver_text == init.self_name and (not parent_init or c.order < parent_init[0].order)]
        if registrations and not any(d.order < registrations[0].order for d in assignments):
            registration = registrations[0]
            problem = "is called only after" if parent_init else "is never called"
            ctx.report(registration.node, f"{cls.name}.__init__ calls self.{registration.method}() but "
                                          f"super().__init__() {problem}, so nn.Module's registries do not exist "
                                          f"yet (AttributeError); call super().__init__() first.")
            continue
        if not assignments:
            continue
        if parent_init:
            # Plain values may be set before super().__init__(); modules and parameters may not.
            early = [d for d in assignments if d.order < parent_init[0].order and
                     _is_module_or_parameter(analysis, d, init)]
            if not early:
                continue
            first, problem = early[0], "is called only after"
        else:
            # Report where it breaks: the first submodule or parameter assigned, else the first attribute.
            crashing = [d for d in assignments if _is_module_or_parameter(analysis, d, init)]
            first, problem = (crashing or assignments)[0], "is never called"
        ctx.report(first.node, f"{cls.name}.__init__ assigns self.{first.name} but super().__init__() {problem}, so "
                               f"nn.Module's registries do not exist yet (AttributeError: cannot assign module "
                               f"before Module.__init__() call); call super().__init__() first.")


def _is_module_or_parameter(analysis, definition, scope) -> bool:
    for instance in analysis.instances(definition.value, scope, definition.order):
        if instance.project_class is not None and analysis.is_module_class(instance.project_class):
            return True
        if instance.torch_class and instance.torch_class.startswith("torch.nn") and \
                (instance.torch_name or "")[:1].isupper():
            return True
    return False
