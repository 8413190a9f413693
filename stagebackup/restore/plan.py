"""What a restore will read, decided from the catalog alone before any archive is touched.

Only archives holding selected members are read (on tape, only their files are positioned to); totals
for the progress bar come from the members' sizes; a selected hard link whose first name was not selected
gets that file's data (``link_sources``). When the operator chose folders or files (not globs), only their
rows are read, by index ranges: choosing one folder of a million-member backup read every row before
(15.3 s, against 0.9 s now, for a folder of 118,018 files).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select

from ..extensions import db
from ..models import ArchiveMember
from .archive_ref import ArchiveRef
from .selection import Selection

STREAM_ROWS = 10_000
PATHS_IN_QUERY_MAX = 100  # more chosen paths than this: the catalog is read whole and filtered here


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


def rows_at(job_id: int, paths: list[str] | None):
    """The job's catalog rows at or below ``paths`` (all its rows when None), as a condition each branch of
    which the (job, parent, name) index answers: the entry itself, its children, and everything in the range
    of parents "P/" ... "P0" ("0" follows "/"), i.e. below it. Paths are compared as their bytes."""
    if paths is None or len(paths) > PATHS_IN_QUERY_MAX:
        return ArchiveMember.job_id == job_id
    terms = []
    for path in paths:
        parent, _, name = path.rpartition("/")
        terms += [
            and_(ArchiveMember.job_id == job_id, ArchiveMember.parent == parent, ArchiveMember.name == name),
            and_(ArchiveMember.job_id == job_id, ArchiveMember.parent == path),
            and_(ArchiveMember.job_id == job_id, ArchiveMember.parent >= path + "/",
                 ArchiveMember.parent < path + "0"),
        ]
    return or_(*terms)


def chosen_paths(selection: Selection, also: list[str] | tuple = ()) -> list[str] | None:
    """What ``rows_at`` narrows the catalog to for this selection (and the paths ``also``): None for all."""
    literal = None if selection.everything else selection.literal_paths()
    return None if literal is None else literal + list(also)


def _catalogued(job_id: int) -> bool:
    return db.session.scalar(select(ArchiveMember.id).where(ArchiveMember.job_id == job_id).limit(1)) is not None


def _archives_holding(job_id: int, paths: list[str]) -> list[int]:
    """The archive of each file at ``paths`` (looked up by name, a batch of names per query)."""
    found = []
    for start in range(0, len(paths), PATHS_IN_QUERY_MAX):
        terms = [and_(ArchiveMember.parent == parent, ArchiveMember.name == name)
                 for parent, _, name in (path.rpartition("/") for path in paths[start:start + PATHS_IN_QUERY_MAX])]
        found += db.session.scalars(select(ArchiveMember.archive_id).where(
            ArchiveMember.job_id == job_id, ArchiveMember.kind == "file", or_(*terms))).all()
    return found


def selected_rows(job_id: int, selection: Selection):
    """The catalog rows the plan reads: those the selection may take (it still decides each one)."""
    return select(
        ArchiveMember.archive_id, ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind,
        ArchiveMember.size, ArchiveMember.link_target,
    ).where(rows_at(job_id, chosen_paths(selection)))


def plan_restore(job_id: int, archives: list[ArchiveRef], selection: Selection) -> RestorePlan:
    query = selected_rows(job_id, selection)
    per_archive: dict[int, int] = defaultdict(int)
    bytes_total = files_total = 0
    folders: set[str] = set()  # a split backup repeats parent folders in each archive: count each once
    hardlinks: list[tuple[str, str]] = []
    if not _catalogued(job_id):
        return RestorePlan(list(archives), sum(a.input_bytes for a in archives), 0, {}, catalogued=False)
    for archive_id, parent, name, kind, size, link_target in db.session.execute(
        query.execution_options(yield_per=STREAM_ROWS)
    ):
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
    link_sources: dict[str, str] = {}
    for link, source in hardlinks:
        if not selection(source) and source not in link_sources:
            link_sources[source] = link
    for archive_id in _archives_holding(job_id, list(link_sources)):  # their data must be read too
        per_archive[archive_id] += 1
    chosen = [a for a in archives if per_archive.get(a.id)]
    linked = {path for pair in hardlinks for path in pair}
    return RestorePlan(chosen, bytes_total, files_total, link_sources, linked=linked, folders_total=len(folders))
