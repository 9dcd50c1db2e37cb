"""A small package run with `dllint confirm -m recsys.train`: the bug (DL101, under a GradScaler and
gradient clipping) sits in engine.py."""
