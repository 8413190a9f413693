"""Writing the member catalog (``archive_members``) in batches: one row per file, directory or link.

Shared by every producer of a backup (tar.gz, 7z, sync mirrors), so restore browses them all the same
way. Rows come from ``pipeline.archive.member_row``: the stored name split into ``parent`` and ``name``
(exact bytes), so a folder listing is one indexed range scan.
"""

from __future__ import annotations

from collections.abc import Iterable

from .bulk import insert_rows
from .extensions import db
from .models import ArchiveMember, Job
from .pipeline.archive import member_row

BATCH_ROWS = 2000


class MemberBatcher:
    """Collects member rows and inserts them ``BATCH_ROWS`` at a time (the caller commits).

    Catalogs reach millions of rows, so rows are tuples in the order of ``COLUMNS``, handed to
    ``bulk.insert_rows`` as they are: paths are already bytes (what ``FSPath`` would store).
    """

    COLUMNS = ("job_id", "archive_id", "parent", "name", "kind", "size", "mtime", "mode", "link_target")

    def __init__(self, job_id: int, archive_id: int):
        self.job_id, self.archive_id = job_id, archive_id
        self.rows: list[tuple] = []
        self.count = 0

    def add(self, path: str | bytes, kind: str, *, size: int = 0, mtime: float = 0.0, mode: int = 0,
            link_target: str | bytes | None = None) -> None:
        self.add_rows((member_row(path, kind, size, mtime, mode, link_target),))

    def add_rows(self, rows: Iterable[tuple]) -> None:
        """Rows already made by ``member_row`` (a ``MemberSpool`` yields them)."""
        ids = (self.job_id, self.archive_id)
        for row in rows:
            self.rows.append(ids + row)
            if len(self.rows) >= BATCH_ROWS:
                self.flush()

    def flush(self) -> None:
        insert_rows(ArchiveMember.__table__, self.COLUMNS, self.rows)
        self.count += len(self.rows)
        self.rows = []


def catalog_job(job_id: int) -> int:
    """The job whose archives and members describe ``job_id``'s backup: itself, or for a sync run that found
    its mirror unchanged, the earlier run whose catalog it refers to."""
    return db.session.scalar(db.select(Job.catalog_job_id).where(Job.id == job_id)) or job_id
