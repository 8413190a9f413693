"""Writing the member catalog (``archive_members``) in batches: one row per file, directory or link.

Shared by every producer of a backup (tar.gz, 7z, sync mirrors), so restore browses them all the same
way. Member paths are the names stored in the archive (bytes-exact, surrogate-escaped str), split into
``parent`` and ``name`` so a folder listing is one indexed range scan.
"""

from __future__ import annotations

import os

from .extensions import db
from .models import ArchiveMember

BATCH_ROWS = 2000


def split_member_path(path: str) -> tuple[str, str]:
    """``"a/b/c.txt"`` → ``("a/b", "c.txt")``; a top-level entry has parent ``""``."""
    path = path.strip("/")
    parent, _, name = path.rpartition("/")
    return parent, name


class MemberBatcher:
    """Collects member rows and inserts them ``BATCH_ROWS`` at a time (the caller commits)."""

    def __init__(self, job_id: int, archive_id: int):
        self.job_id, self.archive_id = job_id, archive_id
        self.rows: list[dict] = []
        self.count = 0

    def add(self, path: str | bytes, kind: str, *, size: int = 0, mtime: float = 0.0, mode: int = 0,
            link_target: str | bytes | None = None) -> None:
        parent, name = split_member_path(os.fsdecode(path))
        self.rows.append({
            "job_id": self.job_id, "archive_id": self.archive_id, "parent": parent, "name": name, "kind": kind,
            "size": size, "mtime": mtime, "mode": mode,
            "link_target": os.fsdecode(link_target) if link_target is not None else None,
        })
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            db.session.execute(db.insert(ArchiveMember), self.rows)
            self.count += len(self.rows)
            self.rows = []
