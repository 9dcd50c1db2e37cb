"""Runtime mode: run training code under instrumentation and confirm what the static checks suspect.

This package is the only place where dllint imports torch, and it does so only inside the child process
that runs the user's script (`dllint confirm`) or inside a `check_model()` call: importing
`dllint.runtime` itself stays free of torch.
"""

from __future__ import annotations


def check_model(model, batch, loss_fn=None, **options):
    """Run the model-only checks (overfit one batch, loss at init, zeroed inputs, batch independence, dead
    parameters, train/eval differences) and return a `ModelReport`. See dllint.runtime.model_check."""
    from dllint.runtime.model_check import check_model as run_checks

    return run_checks(model, batch, loss_fn, **options)
