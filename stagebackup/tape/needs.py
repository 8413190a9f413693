"""The tapes a restore or verify reads, in the order it reads them: listed on its page before it starts,
in its log when it starts, and in ``flask jobs show``."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from ..catalog import catalog_job
from ..extensions import db
from ..models import Archive, Job
from ..tape_models import Tape, TapeFile


def tapes_needed(catalog_job_id: int, archive_ids: Collection[int] | None = None) -> list[str]:
    """The labels of the tapes a restore or verify of this backup reads, in the order it reads them
    (archive by archive, piece by piece); ``archive_ids`` narrows it to the archives a restore plan reads."""
    query = (select(Tape.label).join(TapeFile, TapeFile.tape_id == Tape.id)
             .join(Archive, Archive.id == TapeFile.archive_id)
             .where(Archive.job_id == catalog_job_id, TapeFile.kind == "archive", TapeFile.void.is_(False))
             .order_by(Archive.seq, Archive.id, TapeFile.piece))
    if archive_ids is not None:
        query = query.where(Archive.id.in_(archive_ids))
    labels: list[str] = []
    for label in db.session.scalars(query):
        if not labels or labels[-1] != label:  # a tape read again later is listed again: it is loaded again
            labels.append(label)
    return labels


def tapes_for_job(job: Job) -> list[str]:
    """What a restore or verify job's page lists before it starts: the tapes of the backup it reads."""
    if job.kind not in ("restore", "verify") or job.source_job_id is None:
        return []
    return tapes_needed(catalog_job(job.source_job_id))
