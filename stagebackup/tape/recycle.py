"""Tape expiry and recycling: which tapes hold nothing worth keeping, so they may be labelled over or erased.

A tape file expires when its pool's retention period has passed since it was written, or when its archive
was expired (by the project's retention, ``retention.py``, or with its project's backups on removal). A
session index expires with the archives it describes on that tape. A tape whose every data file has
expired becomes ``expired``: its catalog rows stay as history (the files and their archives marked
expired, so restore no longer offers them) and only then may it be labelled over or erased. A tape
without data files (labelled, nothing written yet) is blank and may be labelled over too.

``now`` is a parameter everywhere so a frozen clock tests the rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from .. import audit
from ..dbtypes import utcnow
from ..extensions import db
from ..models import ACTIVE_STATUSES, Archive, Job
from ..tape_models import Tape, TapeFile
from . import media, pools

#: Inventory states a tape may expire from (an expired or retired tape is done).
EXPIRABLE_STATES = (media.LABELLED, media.FULL)


def _data_files(tape_ids: Iterable[int]) -> dict[int, list]:
    """Per tape: (kind, job, written_at, file expired_at, archive expired_at) of its valid data files."""
    ids = list(tape_ids)
    files: dict[int, list] = defaultdict(list)
    if not ids:
        return files
    rows = db.session.execute(
        select(TapeFile.tape_id, TapeFile.kind, TapeFile.job_id, TapeFile.written_at, TapeFile.expired_at,
               Archive.expired_at).outerjoin(Archive, Archive.id == TapeFile.archive_id)
        .where(TapeFile.tape_id.in_(ids), TapeFile.kind != "label", TapeFile.void.is_(False)))
    for tape_id, *row in rows:
        files[tape_id].append(row)
    return files


def _all_expired(files: list, retention_days: int | None, now: datetime) -> bool:
    """Whether every data file of one tape has expired (False for a tape without any)."""
    horizon = now - timedelta(days=retention_days) if retention_days else None

    def past(written_at, file_expired, archive_expired) -> bool:
        return bool(file_expired or archive_expired or (horizon is not None and written_at <= horizon))

    # An index describes the archives beside it: it expires with them, whatever its own date.
    return bool(files) and all(kind == "index" or past(at, fx, ax) for kind, _job, at, fx, ax in files)


def _being_written() -> set[int]:
    """Tapes a job still running (or waiting) is writing to: the file it has open is void until it is done."""
    return set(db.session.scalars(select(TapeFile.tape_id).join(Job, Job.id == TapeFile.job_id).where(
        TapeFile.void.is_(True), Job.status.in_(ACTIVE_STATUSES)).distinct()))


def expirable(now: datetime | None = None) -> list[Tape]:
    """Tapes still labelled or full whose every data file has expired, by pool and label (never one a job
    is writing to: its new file does not count until it is complete)."""
    now = now or utcnow()
    busy = _being_written()
    tapes = [t for t in db.session.scalars(select(Tape).where(Tape.state.in_(EXPIRABLE_STATES))
                                           .order_by(Tape.pool, Tape.label)) if t.id not in busy]
    files = _data_files(t.id for t in tapes)
    retention = {p.name: p.retention_days for p in pools.all_policies()}
    return [t for t in tapes if _all_expired(files[t.id], retention.get(t.pool), now)]


def reusable(now: datetime | None = None) -> list[tuple[Tape, bool]]:
    """What may be labelled over or erased: (tape, already marked expired), by pool and label."""
    marked = list(db.session.scalars(select(Tape).where(Tape.state == media.EXPIRED)))
    found = [(t, True) for t in marked] + [(t, False) for t in expirable(now)]
    return sorted(found, key=lambda item: (item[0].pool, item[0].label))


def is_blank(tape: Tape) -> bool:
    return not _data_files([tape.id])[tape.id]


def mark_expired(tape: Tape, now: datetime) -> None:
    """The tape is expired; its files and their archives are marked so as history (the caller commits)."""
    tape.state = media.EXPIRED
    db.session.execute(update(TapeFile).where(TapeFile.tape_id == tape.id, TapeFile.kind != "label",
                                              TapeFile.expired_at.is_(None)).values(expired_at=now))
    archive_ids = select(TapeFile.archive_id).where(TapeFile.tape_id == tape.id,
                                                    TapeFile.archive_id.is_not(None)).scalar_subquery()
    db.session.execute(update(Archive).where(Archive.id.in_(archive_ids), Archive.expired_at.is_(None))
                       .values(expired_at=now))


def expire_archive_files(archive_ids: list[int], now: datetime) -> None:
    """The archives were deleted or pruned: their tape files are expired too (the caller commits)."""
    if archive_ids:
        db.session.execute(update(TapeFile).where(TapeFile.archive_id.in_(archive_ids),
                                                  TapeFile.expired_at.is_(None)).values(expired_at=now))


def recycle(*, actor: str, dry_run: bool = False, now: datetime | None = None) -> list[Tape]:
    """Mark every tape whose files have all expired (unless a dry run); returns them, one audit row each."""
    now = now or utcnow()
    found = expirable(now)
    if dry_run:
        return found
    for tape in found:
        mark_expired(tape, now)
        audit.record(actor, "tape.recycle", tape.label, details={"pool": tape.pool})
    db.session.commit()
    return found


def may_overwrite(tape: Tape, *, actor: str, now: datetime | None = None) -> bool:
    """Whether the tape may lose its data: expired, blank, or expirable now. An expirable tape is marked
    expired at once (committed: that is a fact whether or not the operator goes on to overwrite it)."""
    if tape.state in (media.EXPIRED, media.RETIRED) or is_blank(tape):
        return True
    if tape.state in EXPIRABLE_STATES and tape in expirable(now):
        mark_expired(tape, now or utcnow())
        audit.record(actor, "tape.recycle", tape.label, details={"pool": tape.pool})
        db.session.commit()
        return True
    return False
