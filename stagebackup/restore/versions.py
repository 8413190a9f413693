"""历史版本: every finished backup whose catalog holds one path, newest first, with where each copy lives.

One range of ``ix_archive_members_parent_name`` (parent, name, job_id) finds the rows of the path in every
backup, so the answer costs the same on a catalog of a thousand members or of millions (bench/
bench_versions.py). Backups whose project was removed are included (a job keeps its project's name), pruned
ones are not (their archives are gone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Archive, ArchiveMember, Job
from ..retention import pruned_jobs_filter
from ..tape_models import Tape, TapeFile
from .service import RESTORABLE_STATUSES

MAX_VERSIONS = 500


@dataclass(frozen=True)
class Version:
    job_id: int
    project_name: str
    finished_at: datetime | None
    kind: str
    size: int
    mtime: float | None
    location_kind: str  # directory | tape
    path: str | None  # the archive file or the mirror folder (a directory destination)
    tape_files: tuple[tuple[str, int], ...] = ()  # (label, file number) of each piece on tape


def versions_query(path: str):
    """The catalog rows of ``path`` in every restorable backup, newest first (one index range)."""
    parent, _, name = path.strip("/").rpartition("/")
    held = aliased(Archive)  # not the Archive the pruned-jobs condition looks at
    return (
        select(ArchiveMember.job_id, ArchiveMember.archive_id, ArchiveMember.kind, ArchiveMember.size,
               ArchiveMember.mtime, Job.project_name, Job.finished_at, held.location_kind, held.path)
        .join(Job, Job.id == ArchiveMember.job_id).join(held, held.id == ArchiveMember.archive_id)
        .where(ArchiveMember.parent == parent, ArchiveMember.name == name, Job.kind == "backup",
               Job.status.in_(RESTORABLE_STATUSES), pruned_jobs_filter())
        .order_by(ArchiveMember.job_id.desc()).limit(MAX_VERSIONS)
    )


def versions_of(path: str) -> list[Version]:
    rows = db.session.execute(versions_query(path)).all()
    pieces = _tape_pieces({row.archive_id for row in rows if row.location_kind == "tape"})
    seen: set[int] = set()
    versions = []
    for row in rows:
        if row.job_id in seen:  # a folder stored in several archives of one backup is one version
            continue
        seen.add(row.job_id)
        versions.append(Version(row.job_id, row.project_name, row.finished_at, row.kind, row.size, row.mtime,
                                row.location_kind, row.path, tuple(pieces.get(row.archive_id, ()))))
    return versions


def _tape_pieces(archive_ids: set[int]) -> dict[int, list[tuple[str, int]]]:
    """(label, file number) of each live piece of the archives on tape, in piece order."""
    if not archive_ids:
        return {}
    pieces: dict[int, list[tuple[str, int]]] = {}
    for archive_id, label, number in db.session.execute(
        select(TapeFile.archive_id, Tape.label, TapeFile.file_number).join(Tape, Tape.id == TapeFile.tape_id)
        .where(TapeFile.archive_id.in_(archive_ids), TapeFile.kind == "archive", TapeFile.void.is_(False))
        .order_by(TapeFile.archive_id, TapeFile.piece)
    ):
        pieces.setdefault(archive_id, []).append((label, number))
    return pieces
