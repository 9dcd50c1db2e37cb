"""The analysis model: facts collected per file, joined per project, queried by the checks."""
