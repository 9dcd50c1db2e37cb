"""A small package run with `dllint confirm -m recsys.train`: the bug (DL101) sits in engine.py."""
