"""Sync destinations: a mirror is a plain folder, so restoring one is copying its catalogued members back.

A mirror holds one state, its newest (each sync updates it in place). An older sync job's catalog still
describes what that run saw, so a restore from it is honest about the difference: a file whose size or
mtime in the mirror no longer matches the chosen job's catalog is not restored (the newer content is not
the version asked for) but logged as ``[SKIP] changed since job N``, and the job ends ``warning``. The
mirror is read with the same no-symlink walk the extractor writes with, so a link inside the mirror is
copied as a link and never read through.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import select, tuple_

from ..errors import N_
from ..extensions import db
from ..models import ArchiveMember
from .archive_ref import ArchiveMissing, ArchiveRef
from .extract import Owner, SafeExtractor
from .member_names import Refused, member_parts
from .plan import STREAM_ROWS, member_path

COPY_BYTES = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


MTIME_TOLERANCE_S = 1e-6  # the catalog keeps mtimes as float seconds: nanoseconds do not survive the round trip
CHANGED_SUMMARY = N_("%(count)s file(s) changed in the mirror since job %(job_id)s were not restored: see [SKIP] "
                     "lines in the log")


class Member(NamedTuple):
    path: str
    kind: str
    size: int
    mtime: float
    link_target: str | None


def catalog_rows(ref: ArchiveRef, job_id: int) -> Iterator[Member]:
    """Members (path, kind, size, mtime, link target) in parent order, so a folder comes before its contents.

    Read a page at a time by (parent, name): the restore commits its progress while it copies, and a commit
    ends a server-side cursor (PostgreSQL), so one long streaming query cannot outlive it.
    """
    after = None
    while True:
        query = (
            select(ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind, ArchiveMember.size,
                   ArchiveMember.mtime, ArchiveMember.link_target)
            .where(ArchiveMember.job_id == job_id, ArchiveMember.archive_id == ref.id)
        )
        if after is not None:
            query = query.where(tuple_(ArchiveMember.parent, ArchiveMember.name) > after)
        rows = db.session.execute(query.order_by(ArchiveMember.parent, ArchiveMember.name).limit(STREAM_ROWS)).all()
        for parent, name, kind, size, mtime, link_target in rows:
            yield Member(member_path(parent, name), kind, size, mtime, link_target)
        if len(rows) < STREAM_ROWS:
            return
        after = (rows[-1][0], rows[-1][1])


class _MirrorReader:
    def __init__(self, root: str):
        try:
            self.root_fd = os.open(root, _DIR_FLAGS)
        except OSError as exc:
            raise ArchiveMissing(os.fsdecode(root), exc.strerror) from exc
        self._parent: tuple[tuple[bytes, ...], int] | None = None

    def parent_fd(self, parts: tuple[bytes, ...]) -> int:
        """The folder holding ``parts``, opened without following any link (one cached at a time)."""
        folder = parts[:-1]
        if self._parent is not None and self._parent[0] == folder:
            return self._parent[1]
        fd = os.dup(self.root_fd)
        try:
            for component in folder:
                next_fd = os.open(component, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = next_fd
        except OSError as exc:
            os.close(fd)
            raise Refused(f"not in the mirror any more ({exc.strerror})") from exc
        if self._parent is not None:
            os.close(self._parent[1])
        self._parent = (folder, fd)
        return fd

    def close(self) -> None:
        if self._parent is not None:
            os.close(self._parent[1])
        os.close(self.root_fd)


class ChangedSince(Exception):
    """A file the mirror holds in a newer state than the chosen job catalogued."""


def restore_mirror(ref: ArchiveRef, job_id: int, extractor: SafeExtractor, selected, progress) -> None:
    if not ref.path:
        raise ArchiveMissing(ref.label, "no path recorded")
    reader = _MirrorReader(ref.path)
    changed = 0
    try:
        for member in catalog_rows(ref, job_id):
            if not selected(member.path):
                continue
            progress.checkpoint()
            progress.advance(files=int(member.kind == "file"), current=member.path)  # as the plan counts
            try:
                parts = member_parts(member.path)
                if parts:
                    _copy_member(reader, parts, member, extractor, progress)
            except Refused as exc:
                extractor.refuse(member.path, str(exc))
            except ChangedSince:
                changed += 1
                progress.log_path("SKIP", member.path, f"changed since job {job_id}")
    finally:
        reader.close()
    if changed:
        progress.warn(CHANGED_SUMMARY, {"count": changed, "job_id": job_id})


def _unchanged(member: Member, st: os.stat_result) -> bool:
    """The mirror's file is still the one the job catalogued (same size and mtime)."""
    return st.st_size == member.size and abs(st.st_mtime_ns / 1e9 - member.mtime) <= MTIME_TOLERANCE_S


def _copy_member(reader: _MirrorReader, parts, member: Member, extractor: SafeExtractor, progress) -> None:
    path, kind, link_target = member.path, member.kind, member.link_target
    dir_fd = reader.parent_fd(parts)
    try:
        st = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise Refused(f"not in the mirror any more ({exc.strerror})") from exc
    if kind == "hardlink" and link_target and extractor.was_restored(link_target):
        extractor.hardlink(path, link_target)
    elif stat.S_ISDIR(st.st_mode):
        extractor.directory(path, st.st_mode, st.st_mtime_ns, Owner(uid=st.st_uid, gid=st.st_gid))
    elif stat.S_ISLNK(st.st_mode):
        extractor.symlink(path, os.readlink(parts[-1], dir_fd=dir_fd), st.st_mtime_ns,
                          Owner(uid=st.st_uid, gid=st.st_gid))
    elif stat.S_ISREG(st.st_mode):
        if kind == "file" and not _unchanged(member, st):
            raise ChangedSince(path)
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            sink = extractor.begin_file(path, st.st_mode, st.st_mtime_ns, Owner(uid=st.st_uid, gid=st.st_gid))
            if sink is None:
                return
            try:
                while chunk := os.read(fd, COPY_BYTES):
                    sink.write(chunk)
                    progress.advance(nbytes=len(chunk))
            except BaseException:
                sink.abort()
                raise
            sink.close()
        finally:
            os.close(fd)
    else:
        raise Refused("special file in the mirror: not restored")
