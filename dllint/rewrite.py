"""Writing fixed source back: in the file's own encoding (a UTF-8 BOM and a `# -*- coding: -*-` cookie
are kept), only when the file still holds what was linted, and as a diff that applies to its bytes.

Line breaks need no care here: sources are decoded without newline translation, so CRLF and lone CR
reach the edits, and the file, as they were.
"""

from __future__ import annotations

import difflib
import io
import tokenize
from typing import Optional


class RewriteError(Exception):
    """A file that could not be rewritten, worded for the user (without the path)."""


def source_encoding(data: bytes) -> str:
    """The encoding Python reads `data` with (`utf-8-sig` when it starts with a BOM)."""
    try:
        return tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except (SyntaxError, LookupError):
        return "utf-8"


def encode_like(original: bytes, text: str) -> bytes:
    """`text` encoded as `original` was: same encoding, BOM kept."""
    encoding = source_encoding(original)
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        raise RewriteError(f"the fixed text cannot be written in the file's encoding ({encoding}): "
                           f"{error.object[error.start:error.end]!r}") from None


def rewrite_file(path: str, linted_text: str, fixed_text: str) -> None:
    """Replace `linted_text` by `fixed_text` in the file at `path`, unless the file changed since it
    was read (or was deleted: it is never created again). Raises RewriteError."""
    try:
        # r+b: reads and writes through one handle, and never creates the file.
        with open(path, "r+b") as handle:
            original = handle.read()
            if _decoded(original) != linted_text:
                raise RewriteError("the file changed while dllint ran; not fixed")
            handle.seek(0)
            handle.write(encode_like(original, fixed_text))
            handle.truncate()
    except FileNotFoundError:
        raise RewriteError("the file was deleted while dllint ran; not fixed") from None
    except OSError as error:
        raise RewriteError(f"cannot write the fixes: {error.strerror or error}") from None


def read_if_unchanged(path: str, linted_text: str) -> bytes:
    """The file's bytes, provided they still decode to `linted_text`. Raises RewriteError."""
    try:
        with open(path, "rb") as handle:
            original = handle.read()
    except OSError as error:
        raise RewriteError(f"cannot read the file again: {error.strerror or error}") from None
    if _decoded(original) != linted_text:
        raise RewriteError("the file changed while dllint ran")
    return original


def _decoded(data: bytes) -> Optional[str]:
    try:
        return data.decode(source_encoding(data))
    except (UnicodeDecodeError, LookupError):
        return None


_NO_NEWLINE = b"\n\\ No newline at end of file\n"


def unified_diff(name: str, old: bytes, new: bytes) -> bytes:
    """A unified diff of the file's bytes, as `patch` and `git apply` read it: lines end at "\\n" only
    (a CR stays part of its line) and a last line without one is marked."""
    # Not bytes.splitlines: it also breaks at a lone CR, which patch does not.
    old_lines, new_lines = _lines(old), _lines(new)
    label = name.encode("utf-8", "surrogateescape")
    out = []
    for line in difflib.diff_bytes(difflib.unified_diff, old_lines, new_lines, b"a/" + label, b"b/" + label,
                                   lineterm=b"\n"):
        out.append(line if line.endswith(b"\n") else line + _NO_NEWLINE)
    return b"".join(out)


def _lines(data: bytes):
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
