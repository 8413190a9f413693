"""The media catalog as a backup job's drive session writes it: the one place with database I/O off the
job's thread.

A tape sink runs on the pipeline's copy thread (or the direct-to-tape writer thread) while the job's thread
compresses the next group. What it writes here is the media catalog, which belongs to the tape layer
(``tapes``, ``tape_files``, ``drives``), never job state: waiting for a tape, the plan and log lines go to the
job's reporter as facts (see ``pipeline/overlap.py``).

Why these writes cannot wait for the job's thread: a tape file's ``tape_files`` row must be committed,
void, *before* its first block reaches the tape, and made valid only after its filemark and read-back, so
that a crash at any point leaves a void row and never a catalogued archive that is not on tape. Handing the
row to the job's thread would delay it until that thread's next checkpoint (up to one compressed group
later) while the drive waits. Each method runs in an application context of its own when its thread has
none, commits at once and rolls back on failure, so no transaction (and no SQLite write lock) is held
across a tape operation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, has_app_context
from sqlalchemy import delete, func, select, update

from ..dbtypes import utcnow
from ..extensions import db
from ..tape_models import Tape, TapeFile
from . import media, pools
from .mtio import DriveStatus


@dataclass(frozen=True)
class TapeRecord:
    """What a drive session needs to know of an inventory row."""

    id: int
    label: str
    uuid: str
    pool: str
    state: str
    capacity_bytes: int
    bytes_used: int


class MediaLedger:
    def __init__(self, app: Flask, config: Mapping, *, drive: str, job_id: int):
        self.app, self.config, self.drive, self.job_id = app, config, drive, job_id

    @contextlib.contextmanager
    def _transaction(self):
        """An app context if this thread has none; commit on success, roll back on any failure."""
        context = contextlib.nullcontext() if has_app_context() else self.app.app_context()
        with context:
            try:
                yield
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise

    # -- inventory --------------------------------------------------------------------------------
    def tape(self, label: str) -> TapeRecord | None:
        with self._transaction():
            row = media.get_tape(label)
            if row is None:
                return None
            return TapeRecord(row.id, row.label, row.uuid, row.pool, row.state, row.capacity_bytes or 0,
                              row.bytes_used or 0)

    def reconcile(self, tape_id: int, next_file: int) -> int | None:
        """Drop void rows at or beyond the tape's end of data (a job died before writing them); returns the
        highest file number the catalog still lists at or beyond it (the tape lost data), else None."""
        with self._transaction():
            db.session.execute(delete(TapeFile).where(
                TapeFile.tape_id == tape_id, TapeFile.file_number >= next_file, TapeFile.void.is_(True)))
            last = db.session.scalar(select(func.max(TapeFile.file_number)).where(TapeFile.tape_id == tape_id))
        return last if last is not None and last >= next_file else None

    def allocation_refusal(self, tape_id: int, pool: str) -> str | None:
        """Why the pool's allocation policy keeps this job off the tape (pools.py), or None."""
        with self._transaction():
            return pools.refusal(tape_id, pools.policy(pool), self.job_id, utcnow())

    def mark_full(self, tape_id: int) -> None:
        with self._transaction():
            db.session.execute(update(Tape).where(Tape.id == tape_id).values(state=media.FULL, updated_at=utcnow()))

    def drive_seen(self, *, status: DriveStatus | None = None, label: str | None = None, busy: bool,
                   message: str | None = None, keep_label: bool = False) -> None:
        """What this job's session did with the drive, for the drive card (busy with this job, or not)."""
        with self._transaction():
            media.update_drive(self.config, self.drive, status=status, label=label,
                               busy_job_id=self.job_id if busy else None, message=message, keep_label=keep_label)

    # -- tape files -------------------------------------------------------------------------------
    def open_file(self, tape_id: int, file_number: int, kind: str, piece: int, block_size: int) -> int:
        """The ``tape_files`` row of a file about to be written, void until its write is confirmed."""
        with self._transaction():
            row = TapeFile(tape_id=tape_id, file_number=file_number, kind=kind, job_id=self.job_id, piece=piece,
                           block_size=block_size, void=True, written_at=utcnow())
            db.session.add(row)
            db.session.flush()
            row_id = row.id  # taken before the commit: reading it after would open a new transaction
        return row_id

    def file_written(self, row_id: int, tape_id: int, *, blocks: int, nbytes: int, sha256: str | None,
                     verified: bool, valid: bool = False) -> None:
        """The file is on tape behind its filemark; ``valid`` only when nothing else remains to check."""
        now = utcnow()
        with self._transaction():
            db.session.execute(update(TapeFile).where(TapeFile.id == row_id).values(
                blocks=blocks, bytes=nbytes, sha256=sha256, written_at=now, verified_at=now if verified else None,
                void=not valid))
            db.session.execute(update(Tape).where(Tape.id == tape_id).values(
                bytes_used=Tape.bytes_used + nbytes, updated_at=now))

    def confirm(self, row_ids: list[int]) -> None:
        """Every piece of an archive is written and checked: its tape files are valid."""
        with self._transaction():
            db.session.execute(update(TapeFile).where(TapeFile.id.in_(row_ids)).values(void=False))


def link_archive(piece_row_ids: list[int], archive_id: int) -> None:
    """Point an archive's tape files at its ``archives`` row, in the caller's transaction (the one that
    records the archive), so the catalog never names half a placement."""
    if piece_row_ids:
        db.session.execute(update(TapeFile).where(TapeFile.id.in_(piece_row_ids)).values(archive_id=archive_id))


def void_unrecorded(job_id: int) -> None:
    """The job ended without recording every archive it put on tape (killed between the read-back and the
    catalog's transaction): those tape files are void, like any partial one. In the caller's transaction."""
    db.session.execute(update(TapeFile).where(
        TapeFile.job_id == job_id, TapeFile.kind == "archive", TapeFile.archive_id.is_(None),
        TapeFile.void.is_(False)).values(void=True))
