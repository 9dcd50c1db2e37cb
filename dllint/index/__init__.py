"""The project index: what the rest of a project needs to know of each file, without reading it.

Layering: per-file work (dllint/engine.py: reading, parsing, one file's facts) lies below the index;
the index lies below the runner (dllint/runner.py: chunks, workers, the result cache), which lies
below the entry points (the command line, the language server, confirm).
"""
