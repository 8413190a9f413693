"""What a restore will read, decided from the catalog alone before any archive is touched.

Only archives holding selected members are read (on tape, only their files are positioned to); totals
for the progress bar come from the members' sizes; a selected hard link whose first name was not selected
gets that file's data (``link_sources``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from ..extensions import db
from ..models import ArchiveMember
from .archive_ref import ArchiveRef
from .selection import Selection

STREAM_ROWS = 10_000


def member_path(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


@dataclass
class RestorePlan:
    archives: list[ArchiveRef]
    bytes_total: int = 0
    files_total: int = 0
    link_sources: dict[str, str] = field(default_factory=dict)
    catalogued: bool = True  # False: the backup has no member rows, every archive is read
    # Every selected hard link and the name it points at: all the extractor must remember (None: everything).
    linked: set[str] | None = None
    folders_total: int = 0


def plan_restore(job_id: int, archives: list[ArchiveRef], selection: Selection) -> RestorePlan:
    query = select(
        ArchiveMember.archive_id, ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind,
        ArchiveMember.size, ArchiveMember.link_target,
    ).where(ArchiveMember.job_id == job_id)
    per_archive: dict[int, int] = defaultdict(int)
    bytes_total = files_total = 0
    folders: set[str] = set()  # a split backup repeats parent folders in each archive: count each once
    hardlinks: list[tuple[str, str]] = []
    seen_any = False
    for archive_id, parent, name, kind, size, link_target in db.session.execute(
        query.execution_options(yield_per=STREAM_ROWS)
    ):
        seen_any = True
        path = member_path(parent, name)
        if not selection(path):
            continue
        per_archive[archive_id] += 1
        files_total += kind == "file"  # the job's file count is regular files
        if kind == "dir":
            folders.add(path)
        bytes_total += size if kind == "file" else 0
        if kind == "hardlink" and link_target:
            hardlinks.append((path, link_target.strip("/")))
    if not seen_any:
        return RestorePlan(list(archives), sum(a.input_bytes for a in archives), 0, {}, catalogued=False)
    link_sources: dict[str, str] = {}
    for link, source in hardlinks:
        if not selection(source) and source not in link_sources:
            link_sources[source] = link
    if link_sources:  # the archive holding the data must be read too
        source_rows = db.session.execute(
            select(ArchiveMember.archive_id, ArchiveMember.parent, ArchiveMember.name)
            .where(ArchiveMember.job_id == job_id, ArchiveMember.kind == "file")
            .execution_options(yield_per=STREAM_ROWS)  # unbuffered: a million rows held at once were 500 MiB
        )
        for archive_id, parent, name in source_rows:
            if member_path(parent, name) in link_sources:
                per_archive[archive_id] += 1
    chosen = [a for a in archives if per_archive.get(a.id)]
    linked = {path for pair in hardlinks for path in pair}
    return RestorePlan(chosen, bytes_total, files_total, link_sources, linked=linked, folders_total=len(folders))
