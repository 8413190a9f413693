"""Archive member names as safe path components under a restore target, and how the job log spells them.

Kept apart from the extractor because the size checks (``sizes.py``) and the readers need the same name rules
without writing anything: one place decides which names could leave the target.
"""

from __future__ import annotations

import os


class Refused(Exception):
    """A member that must not be restored; ``str()`` is the reason shown in the job log."""


Parts = tuple[bytes, ...]


def member_parts(name: str | bytes) -> Parts:
    """A member name as safe path components; raises Refused for names that could leave the target."""
    raw = os.fsencode(name)
    if b"\0" in raw:
        raise Refused("name contains a NUL byte")
    if raw.startswith(b"/"):
        raise Refused("absolute path")
    parts = tuple(p for p in raw.split(b"/") if p not in (b"", b"."))
    if b".." in parts:
        raise Refused("'..' in the path")
    return parts


def parts_or_none(name: str) -> Parts | None:
    try:
        return member_parts(name)
    except Refused:
        return None


def member_text(parts: Parts) -> str:
    """The member's path as the job log and the catalog spell it (surrogate-escaped str)."""
    return os.fsdecode(b"/".join(parts))


def renamed_candidate(name: bytes, n: int) -> bytes:
    """``logo.ai`` → ``logo.restored-1.ai``: the extension stays last so the file still opens."""
    stem, dot, ext = name.rpartition(b".")
    if not dot or not stem:  # no extension, or a dot file such as ".profile"
        return name + b".restored-%d" % n
    return stem + b".restored-%d." % n + ext
