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
    """Collects member rows and inserts them ``BATCH_ROWS`` at a time (the caller commits).

    Catalogs reach millions of rows, so rows are tuples in the order of ``COLUMNS``, handed to the
    driver's ``executemany`` as they are: paths are already bytes (what ``FSPath`` would store), and
    SQLAlchemy's per-row parameter processing, which costs more than the database's own work, is skipped.
    """

    COLUMNS = ("job_id", "archive_id", "parent", "name", "kind", "size", "mtime", "mode", "link_target")

    def __init__(self, job_id: int, archive_id: int):
        self.job_id, self.archive_id = job_id, archive_id
        self.rows: list[tuple] = []
        self.count = 0

    def add(self, path: str | bytes, kind: str, *, size: int = 0, mtime: float = 0.0, mode: int = 0,
            link_target: str | bytes | None = None) -> None:
        if isinstance(path, bytes):
            parent, _, name = path.strip(b"/").rpartition(b"/")
        else:
            parent, name = map(os.fsencode, split_member_path(path))
        if link_target is not None:
            link_target = os.fsencode(link_target)
        self.rows.append((self.job_id, self.archive_id, parent, name, kind, size, float(mtime), mode, link_target))
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        conn = db.session.connection()
        compiled = ArchiveMember.__table__.insert().compile(dialect=conn.dialect, column_keys=list(self.COLUMNS))
        if compiled.positional:
            order = [self.COLUMNS.index(key) for key in compiled.positiontup]
            params = self.rows if order == sorted(order) else [tuple(row[i] for i in order) for row in self.rows]
        else:
            params = [dict(zip(self.COLUMNS, row, strict=True)) for row in self.rows]
        conn.exec_driver_sql(str(compiled), params)
        self.count += len(self.rows)
        self.rows = []
