"""File names as the operator reads them.

Paths are handled as bytes (or surrogate-escaped str) end to end; only messages and log lines turn
them into text, with undecodable bytes shown as ``\\xNN`` so nothing is silently altered.
"""

from __future__ import annotations

import base64
import binascii
import os


def display(path: str | bytes) -> str:
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    return as_text(path)


# C0 controls and DEL as escapes: a page renders a newline or a tab in a name as a plain space.
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 0x7F)} | {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def display_name(path: str | bytes) -> str:
    """``display`` for a name shown in a page: control characters become visible escapes too, so
    ``inner\\nnewline.txt`` is not mistaken for ``inner newline.txt``. Only the text shown changes; paths
    travel as exact bytes (``path_token``)."""
    return display(path).translate(_CONTROL_ESCAPES)


def as_text(value: str) -> str:
    """Text any database accepts: undecodable bytes (lone surrogates) become visible ``\\xNN`` escapes."""
    if is_text(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a file name
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def is_within(path: str, root: str) -> bool:
    path, root = os.path.abspath(path), os.path.abspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_filename(name: str, max_length: int = 80) -> str:
    """A project name made safe for use in an archive file name (keeps CJK, drops separators)."""
    cleaned = "".join("_" if ch in '/\\\0:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip(" .")
    return (cleaned or "project")[:max_length]


def is_text(value: str) -> bool:
    """False for strings carrying undecodable bytes (lone surrogates), which no database column accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def path_token(path: str | bytes) -> str:
    """A URL-safe token carrying a path's exact bytes (query strings cannot carry non-UTF-8 names)."""
    return base64.urlsafe_b64encode(os.fsencode(path)).decode("ascii").rstrip("=")


def path_from_token(token: str) -> str:
    """The surrogate-escaped path a ``path_token`` carries; ValueError when it is not one."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not a path token") from exc
    if b"\0" in raw:
        raise ValueError("a path cannot contain NUL")
    return os.fsdecode(raw)
