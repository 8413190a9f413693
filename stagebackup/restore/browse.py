"""The catalog as a folder tree and a search, answered from the database alone (never from an archive).

Every query is an index range scan that stops after one page, so a page costs the same on a backup of a
thousand members or of millions:

- a folder listing walks ``ix_archive_members_job_parent_name`` (job_id, parent, name) from a name
  cursor (keyset paging: no OFFSET, which would scan everything before the page);
- folders above the backed-up sources (``srv`` and ``srv/projects`` above ``srv/projects/客户A``) have no
  rows of their own; they are found by a loose index scan over ``parent`` (one seek per folder);
- a name search walks ``ix_archive_members_job_name`` (job_id, name, id): a plain word is a name prefix
  (one range), a glob with a literal start scans only that range, and any glob scans at most
  ``SEARCH_SCAN_ROWS`` index entries per request and hands back a cursor to continue from.

Names are compared as bytes, as the database orders them (non-UTF-8 names included).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

from sqlalchemy import LargeBinary, String, Text, and_, cast, func, literal, or_, select

from ..extensions import db
from ..models import SUCCEEDED, WARNING, Archive, ArchiveMember, Job, Project
from ..retention import pruned_jobs_filter

PAGE_ROWS = 200
SEARCH_PAGE_ROWS = 100
SEARCH_SCAN_ROWS = 20_000  # index entries one glob search request may filter (~1 µs each in SQLite)
MAX_IMPLICIT_FOLDERS = 1_000
WILDCARDS = re.compile(r"[*?\[]")
_COLUMNS = (ArchiveMember.id, ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind, ArchiveMember.size,
            ArchiveMember.mtime, ArchiveMember.mode, ArchiveMember.link_target)


@dataclass(frozen=True)
class Entry:
    parent: str
    name: str
    kind: str  # file | dir | symlink | hardlink (| dir for folders above the sources)
    size: int = 0
    mtime: float | None = None
    mode: int | None = None
    link_target: str | None = None
    id: int | None = None

    @property
    def path(self) -> str:
        return f"{self.parent}/{self.name}" if self.parent else self.name


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    next_after: str | None = None  # cursor for the next page (a folder listing: the last name)
    prev_before: str | None = None
    next_cursor: tuple[str, int] | None = None  # search: (name, id) to continue from
    scanned: int = 0
    exhausted: bool = True


def _b(value: str) -> bytes:
    return os.fsencode(value)


def _entry(row) -> Entry:
    return Entry(row.parent, row.name, row.kind, row.size, row.mtime, row.mode, row.link_target, row.id)


# -- picking a backup -------------------------------------------------------------------------------------
def projects_with_backups() -> list[tuple[Project, int]]:
    counts = (
        select(Job.project_id, func.count(Job.id).label("n"))
        .where(Job.kind == "backup", Job.status.in_((SUCCEEDED, WARNING)), pruned_jobs_filter())
        .group_by(Job.project_id).subquery()
    )
    rows = db.session.execute(
        select(Project, func.coalesce(counts.c.n, 0)).outerjoin(counts, counts.c.project_id == Project.id)
        .order_by(Project.name)
    )
    return [(project, n) for project, n in rows]


def orphan_backup_count() -> int:
    """Finished backups without a project: their project was removed, or they were rebuilt from tape."""
    return db.session.scalar(select(func.count(Job.id)).where(
        Job.project_id.is_(None), Job.kind == "backup", Job.status.in_((SUCCEEDED, WARNING)))) or 0


def finished_backups(project_id: int | None, limit: int = 100) -> list[tuple[Job, int, int, int]]:
    """(job, archives, bytes in archives, members) of the project's finished backups, newest first; with
    ``project_id`` None, those of no project (removed, or rebuilt from tape)."""
    sizes = (
        select(Archive.job_id, func.count(Archive.id).label("n"), func.coalesce(func.sum(Archive.size), 0)
               .label("size"), func.coalesce(func.sum(Archive.member_count), 0).label("members"))
        .group_by(Archive.job_id).subquery()
    )
    rows = db.session.execute(
        select(Job, func.coalesce(sizes.c.n, 0), func.coalesce(sizes.c.size, 0), func.coalesce(sizes.c.members, 0))
        .outerjoin(sizes, sizes.c.job_id == Job.id)
        .where(Job.project_id == project_id if project_id is not None else Job.project_id.is_(None),
               Job.kind == "backup", Job.status.in_((SUCCEEDED, WARNING)), pruned_jobs_filter())
        .order_by(Job.id.desc()).limit(limit)
    )
    return [tuple(row) for row in rows]


# -- folders ----------------------------------------------------------------------------------------------
def folder_query(job_id: int, parent: str, after: str | None, limit: int):
    query = select(*_COLUMNS).where(ArchiveMember.job_id == job_id, ArchiveMember.parent == parent)
    if after is not None:
        query = query.where(ArchiveMember.name > after)
    return query.order_by(ArchiveMember.name).limit(limit)


def _prev_before(job_id: int, parent: str, before: str, limit: int) -> list:
    query = (select(*_COLUMNS).where(ArchiveMember.job_id == job_id, ArchiveMember.parent == parent,
                                     ArchiveMember.name < before)
             .order_by(ArchiveMember.name.desc()).limit(limit))
    return list(reversed(db.session.execute(query).all()))


def is_member_folder(job_id: int, path: str) -> bool:
    if not path:
        return False
    parent, _, name = path.rpartition("/")
    return db.session.scalar(
        select(ArchiveMember.id).where(ArchiveMember.job_id == job_id, ArchiveMember.parent == parent,
                                       ArchiveMember.name == name).limit(1)
    ) is not None


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def implicit_folders(job_id: int, parent: str) -> list[str]:
    """Folders inside ``parent`` that only exist as parents of members (above the backed-up sources).

    A loose index scan: each seek finds the next parent value; after a value inside "…/c/" the scan jumps
    past that whole block (to "…/c0"), so the cost is a few seeks per folder, not one per member.
    """
    base = _b(parent) + b"/" if parent else b""
    upper = _successor(base) if base else None
    names: set[bytes] = set()
    lower, inclusive = base, bool(base)
    for _ in range(3 * MAX_IMPLICIT_FOLDERS):
        query = select(ArchiveMember.parent).where(
            ArchiveMember.job_id == job_id, ArchiveMember.parent >= lower if inclusive else ArchiveMember.parent > lower
        )
        if upper is not None:
            query = query.where(ArchiveMember.parent < upper)
        found = db.session.scalar(query.order_by(ArchiveMember.parent).limit(1))
        if found is None:
            break
        raw = _b(found)
        component, slash, _ = raw[len(base):].partition(b"/")
        names.add(component)
        if len(names) >= MAX_IMPLICIT_FOLDERS:
            break
        if slash:
            lower, inclusive = base + component + b"0", True  # "0" follows "/": past the "component/…" block
        else:
            lower, inclusive = raw, False
    return [os.fsdecode(n) for n in sorted(names)]


def list_folder(job_id: int, parent: str, *, after: str | None = None, before: str | None = None,
                limit: int = PAGE_ROWS) -> Page:
    """One page of a folder, in byte order of names; ``before`` pages backwards."""
    parent = parent.strip("/")
    implicit: list[str] = []
    if not is_member_folder(job_id, parent):
        implicit = implicit_folders(job_id, parent)
    if before is not None:
        rows = _prev_before(job_id, parent, before, limit + 1)
        has_prev = len(rows) > limit
        rows = rows[-limit:]
        entries = _merge(parent, rows, [n for n in implicit if _b(n) < _b(before)], limit, from_end=True)
        page = Page(entries, exhausted=False)
        page.next_after = entries[-1].name if entries else None
        page.prev_before = entries[0].name if entries and (has_prev or _earlier(implicit, entries[0].name)) else None
        return page
    rows = db.session.execute(folder_query(job_id, parent, after, limit + 1)).all()
    candidates = [n for n in implicit if after is None or _b(n) > _b(after)]
    entries = _merge(parent, rows, candidates, limit + 1)
    page = Page(entries[:limit], exhausted=len(entries) <= limit)
    if len(entries) > limit:
        page.next_after = entries[limit - 1].name
    if after is not None and page.entries:
        page.prev_before = page.entries[0].name
    return page


def _earlier(names: list[str], name: str) -> bool:
    return any(_b(n) < _b(name) for n in names)


def _merge(parent: str, rows, implicit: list[str], limit: int, *, from_end: bool = False) -> list[Entry]:
    """Member rows plus implied folders, by name; a folder stored in several archives is listed once."""
    by_name: dict[bytes, Entry] = {}
    for row in rows:
        by_name.setdefault(_b(row.name), _entry(row))
    for name in implicit:
        by_name.setdefault(_b(name), Entry(parent, name, "dir"))
    ordered = [by_name[key] for key in sorted(by_name)]
    return ordered[-limit:] if from_end else ordered[:limit]


# -- search -----------------------------------------------------------------------------------------------
def _after(cursor: tuple[str, int]):
    """(name, id) > cursor, spelled so that ``name >= …`` is the index range both databases seek to."""
    name = _b(cursor[0])
    return and_(ArchiveMember.name >= name, or_(ArchiveMember.name > name, ArchiveMember.id > cursor[1]))


def _up_to(cursor: tuple[str, int]):
    """(name, id) <= cursor, likewise."""
    name = _b(cursor[0])
    return and_(ArchiveMember.name <= name, or_(ArchiveMember.name < name, ArchiveMember.id <= cursor[1]))


def search_query(job_id: int, low: bytes, high: bytes | None, cursor: tuple[str, int] | None, limit: int):
    """Names in [low, high) after ``cursor``, in (name, id) order: a range of ix_archive_members_job_name."""
    query = select(*_COLUMNS).where(ArchiveMember.job_id == job_id, ArchiveMember.name >= low)
    if high is not None:
        query = query.where(ArchiveMember.name < high)
    if cursor is not None:
        query = query.where(_after(cursor))
    return query.order_by(ArchiveMember.name, ArchiveMember.id).limit(limit)


def _window_end(job_id: int, low: bytes, high: bytes | None, cursor) -> tuple[str, int] | None:
    """The (name, id) ``SEARCH_SCAN_ROWS`` index entries ahead: one request filters no further."""
    query = select(ArchiveMember.name, ArchiveMember.id).where(ArchiveMember.job_id == job_id,
                                                               ArchiveMember.name >= low)
    if high is not None:
        query = query.where(ArchiveMember.name < high)
    if cursor is not None:
        query = query.where(_after(cursor))
    row = db.session.execute(
        query.order_by(ArchiveMember.name, ArchiveMember.id).offset(SEARCH_SCAN_ROWS - 1).limit(1)
    ).first()
    return (row.name, row.id) if row else None


def _glob_filter(pattern: str):
    """The glob as a condition the database evaluates while it walks the index (Python re-checks)."""
    if db.engine.dialect.name == "sqlite":
        return cast(ArchiveMember.name, Text).op("GLOB")(literal(pattern, String))  # GLOB ignores BLOBs
    if "[" in pattern:
        return None  # LIKE has no character classes: filtered in Python only
    like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%").replace("?", "_")
    return ArchiveMember.name.op("LIKE")(literal(_b(like), LargeBinary))


def search(job_id: int, text: str, *, cursor: tuple[str, int] | None = None, limit: int = SEARCH_PAGE_ROWS) -> Page:
    """Members whose *name* starts with ``text``, or matches it as a glob (``*.ai``, ``logo_v?.*``).

    A glob request looks at no more than ``SEARCH_SCAN_ROWS`` index entries; when it stops before the end
    ``exhausted`` is False and ``next_cursor`` continues the scan.
    """
    text = text.strip()
    if not text:
        return Page()
    wildcard = WILDCARDS.search(text)
    prefix = _b(text[: wildcard.start()] if wildcard else text)
    low, high = prefix, (_successor(prefix) if prefix else None)
    if not wildcard:
        rows = db.session.execute(search_query(job_id, low, high, cursor, limit + 1)).all()
        page = Page([_entry(r) for r in rows[:limit]], exhausted=len(rows) <= limit, scanned=len(rows))
        if not page.exhausted:
            page.next_cursor = (page.entries[-1].name, page.entries[-1].id)
        return page
    end = _window_end(job_id, low, high, cursor)
    query = search_query(job_id, low, high, cursor, limit + 1)
    if end is not None:
        query = query.where(_up_to(end))
    in_db = _glob_filter(text)
    if in_db is not None:
        query = query.where(in_db)
    else:
        query = query.limit(SEARCH_SCAN_ROWS)
    matches = re.compile(fnmatch.translate(text), re.S).match
    rows = [r for r in db.session.execute(query).all() if matches(r.name)]
    page = Page([_entry(r) for r in rows[:limit]], scanned=SEARCH_SCAN_ROWS if end else 0)
    if len(rows) > limit:
        page.next_cursor, page.exhausted = (page.entries[-1].name, page.entries[-1].id), False
    elif end is not None:
        page.next_cursor, page.exhausted = end, False
    return page
