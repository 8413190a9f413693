"""File names as the operator reads them.

Paths are handled as bytes (or surrogate-escaped str) end to end; only messages and log lines turn
them into text, with undecodable bytes shown as ``\\xNN`` so nothing is silently altered.
"""

from __future__ import annotations

import os


def display(path: str | bytes) -> str:
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    return as_text(path)


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
