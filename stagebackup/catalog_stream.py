"""The member catalog of an archive written while the archive is compressed (the catalog's streaming half).

``catalog.MemberBatcher`` writes rows it is handed; here a thread of its own follows an archive's
``MemberSpool`` (``pipeline/archive.py``) and inserts its rows as the writer spills them, so that when the
compressor finishes, the catalog is written too and recording the archive is one short update.

Atomic from the user's view without a long transaction:

- ``ArchiveCatalog`` first commits the archive's row *unfinished* (``sha256 == UNFINISHED``, no place yet),
  then the member rows hang on it in short transactions (one per spilled batch, at most ``FOLLOW_ROWS``
  rows), so SQLite's one writer lock is held for milliseconds and the job's progress and heartbeats, and
  other workers, are never blocked for long.
- Restore shows a backup only when its job ended succeeded or warning (``restore/browse.py``,
  ``restore/service.py``); a running job's rows are invisible, and ``record_archive`` fills in the archive's
  hash and place in the transaction that releases its file.
- An attempt that fails deletes its unfinished archives and their rows (``discard_unfinished``, short
  transactions); a killed worker's are deleted by the recovery that ends its job (``jobs/queue.py``'s
  ``remove_partial_outputs``, in that transaction), and a retry starts without them.

This thread is the second place with database I/O off the job's thread (after ``tape/ledger.py``): it only
inserts ``archive_members`` rows, never job state, in an application context of its own. It runs at a lower
CPU priority (``CATALOG_NICE``) so the compressing threads keep the cores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from flask import Flask
from sqlalchemy import delete, select

from .bulk import insert_rows
from .catalog import MemberBatcher
from .extensions import db
from .models import Archive, ArchiveMember

log = logging.getLogger(__name__)
UNFINISHED = ""  # an archive row's sha256 until the archive is recorded
CATALOG_NICE = 10
DELETE_ROWS = 5000  # member rows deleted per transaction when an attempt's catalog is discarded


class ArchiveCatalog:
    """One archive's catalog, written by a thread while the archive is written. Created on the job's thread.

    ``finish()`` waits for the rest of the rows and returns the archive row's id; ``abort()`` stops the thread
    (its rows stay until ``discard_unfinished``).
    """

    def __init__(self, app: Flask, job_id: int, seq: int, fmt: str, name: str, spool):
        self.app, self.job_id, self.spool = app, job_id, spool
        self.archive_id = unfinished_archive(job_id, seq, fmt, name)
        self.count = 0
        self.error: BaseException | None = None
        self._stop = False
        self.thread = threading.Thread(target=self._run, name=f"catalog-{seq}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: the nice value of this thread alone
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CATALOG_NICE)
        ids = (self.job_id, self.archive_id)
        with self.app.app_context():
            try:
                for rows in self.spool.follow():
                    if self._stop:
                        return
                    insert_rows(ArchiveMember.__table__, MemberBatcher.COLUMNS, [ids + row for row in rows])
                    db.session.commit()
                    self.count += len(rows)
            except BaseException as exc:  # noqa: BLE001 - handed to the job's thread by finish()
                db.session.rollback()
                self.error = exc

    def finish(self) -> int:
        """Wait for the remaining rows (the spool must be closed); raise what the thread met.

        Commits the caller's session first: on SQLite every transaction holds the write lock (``BEGIN
        IMMEDIATE``), and the thread needs it for its last rows."""
        db.session.commit()
        self.spool.close()
        self.thread.join()
        if self.error is not None:
            raise self.error
        if self.count != self.spool.count:
            raise RuntimeError(f"catalog of archive {self.archive_id}: {self.count} of {self.spool.count} rows")
        return self.archive_id

    def abort(self) -> None:
        """Stop writing (no wait: the caller may hold the lock the thread waits for; ``wait`` after releasing)."""
        self._stop = True
        with contextlib.suppress(Exception):
            self.spool.discard()  # ends the thread's wait for more rows

    def wait(self) -> None:
        self.thread.join()


def unfinished_archive(job_id: int, seq: int, fmt: str, name: str | None) -> int:
    """Commit a new archive row, unfinished (no place, no digest): the rows written before it is recorded hang
    on it. Returns its id."""
    archive = Archive(job_id=job_id, seq=seq, format=fmt, name=name, sha256=UNFINISHED)
    db.session.add(archive)
    db.session.flush()
    archive_id = archive.id  # read before the commit expires it (a read would open a transaction)
    db.session.commit()
    return archive_id


def _unfinished(job_id: int):
    return select(Archive.id).where(Archive.job_id == job_id, Archive.sha256 == UNFINISHED)


def discard_unfinished(job_id: int) -> None:
    """Delete the job's unfinished archives and their rows, in short transactions (the caller's is committed)."""
    for archive_id in db.session.scalars(_unfinished(job_id)).all():
        while ids := db.session.scalars(select(ArchiveMember.id).where(ArchiveMember.archive_id == archive_id)
                                        .limit(DELETE_ROWS)).all():
            db.session.execute(delete(ArchiveMember).where(ArchiveMember.id.in_(ids)))
            db.session.commit()
        db.session.execute(delete(Archive).where(Archive.id == archive_id))
        db.session.commit()


def drop_unfinished(job_id: int) -> None:
    """The same in the caller's transaction (recovery of a killed worker's job, a retry): no commit."""
    archive_ids = db.session.scalars(_unfinished(job_id)).all()
    if archive_ids:
        db.session.execute(delete(ArchiveMember).where(ArchiveMember.archive_id.in_(archive_ids)))
        db.session.execute(delete(Archive).where(Archive.id.in_(archive_ids)))
