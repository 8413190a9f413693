"""Sync destinations: a mirror is a plain folder, so restoring one is copying its catalogued members back.

A mirror holds its newest state (each sync updates it in place): what comes back is the file as the mirror
has it now, for the members the chosen job catalogued. The mirror is read with the same no-symlink walk
the extractor writes with, so a link inside the mirror is copied as a link and never read through.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from sqlalchemy import select, tuple_

from ..extensions import db
from ..models import ArchiveMember
from .archive_ref import ArchiveMissing, ArchiveRef
from .extract import Owner, Refused, SafeExtractor, member_parts
from .plan import STREAM_ROWS, member_path

COPY_BYTES = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def catalog_rows(ref: ArchiveRef, job_id: int) -> Iterator[tuple[str, str, int, str | None]]:
    """(path, kind, size, link target) in parent order, so a folder comes before its contents.

    Read a page at a time by (parent, name): the restore commits its progress while it copies, and a commit
    ends a server-side cursor (PostgreSQL), so one long streaming query cannot outlive it.
    """
    after = None
    while True:
        query = (
            select(ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind, ArchiveMember.size,
                   ArchiveMember.link_target)
            .where(ArchiveMember.job_id == job_id, ArchiveMember.archive_id == ref.id)
        )
        if after is not None:
            query = query.where(tuple_(ArchiveMember.parent, ArchiveMember.name) > after)
        rows = db.session.execute(query.order_by(ArchiveMember.parent, ArchiveMember.name).limit(STREAM_ROWS)).all()
        for parent, name, kind, size, link_target in rows:
            yield member_path(parent, name), kind, size, link_target
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


def restore_mirror(ref: ArchiveRef, job_id: int, extractor: SafeExtractor, selected, progress) -> None:
    if not ref.path:
        raise ArchiveMissing(ref.label, "no path recorded")
    reader = _MirrorReader(ref.path)
    try:
        for path, kind, _size, link_target in catalog_rows(ref, job_id):
            if not selected(path):
                continue
            progress.checkpoint()
            progress.advance(files=int(kind == "file"), current=path)  # as the plan counts
            try:
                parts = member_parts(path)
                if not parts:
                    continue
                _copy_member(reader, parts, path, kind, link_target, extractor, progress)
            except Refused as exc:
                extractor.refuse(path, str(exc))
    finally:
        reader.close()


def _copy_member(reader: _MirrorReader, parts, path: str, kind: str, link_target, extractor: SafeExtractor,
                 progress) -> None:
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
