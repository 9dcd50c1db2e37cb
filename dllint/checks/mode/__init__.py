"""Train and evaluation modes: dropout and batch-norm."""
