"""The catalogued size of each file a restore writes, so an archive can never write more than its catalog says.

A decompression bomb, or a damaged or foreign archive placed under a backup's name, must not fill the disk:
the writer of each member gets its catalogued size as a limit (``FileSink``), and a file member the catalog
never listed is refused. Sizes are read in pages of the catalog's own order (the order the archive was
written in), and each row is dropped once its member is met, so memory stays flat at a million members; a
member met out of order costs one indexed query. When the operator chose folders or files holding at most
``WINDOW_MAX`` files, only their rows are read (``plan.rows_at``), not every file row of the archive.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from ..extensions import db
from ..models import ArchiveMember
from .member_names import Refused, member_parts, member_text
from .plan import STREAM_ROWS, member_path, rows_at

WINDOW_MAX = 10 * STREAM_ROWS  # catalog rows read ahead of the archive, at most


class MemberSizes:
    """``limit(name)``: the catalogued size of file member ``name`` of one archive; Refused when not listed."""

    def __init__(self, job_id: int, archive_id: int, wanted: Callable[[str], bool], paths: list[str] | None = None,
                 chosen_files: int | None = None):
        """``paths``: the rows ``wanted`` can take are at or below these (``plan.rows_at``); None: anywhere.
        ``chosen_files``: how many file rows that is (the plan's count)."""
        self._job_id, self._archive_id, self._wanted = job_id, archive_id, wanted
        # Narrowed rows are in no index's id order, so each page reads all of them again: narrow only when they
        # fit in the window (at most WINDOW_MAX / STREAM_ROWS pages of at most WINDOW_MAX rows). Choosing most
        # of a million-file backup reads its rows by id, a page at a time, as before.
        self._paths = paths if chosen_files is not None and chosen_files <= WINDOW_MAX else None
        self._window: dict[str, int] = {}
        self._after_id = 0
        self._exhausted = False

    def limit(self, name: str | bytes) -> int:
        key = member_text(member_parts(name))
        size = self._window.pop(key, None)
        while size is None and not self._exhausted and len(self._window) < WINDOW_MAX:
            self._read_page()
            size = self._window.pop(key, None)
        if size is None:
            size = self._look_up(key)
        if size is None:
            raise Refused("not in the catalog of this backup (a damaged or foreign archive?)")
        return size

    def _files(self):
        return select(ArchiveMember.id, ArchiveMember.parent, ArchiveMember.name, ArchiveMember.size).where(
            rows_at(self._job_id, self._paths), ArchiveMember.archive_id == self._archive_id,
            ArchiveMember.kind == "file",
        )

    def _read_page(self) -> None:
        """The next page by id: a fresh query each time, as the restore commits its progress in between."""
        query = self._files().where(ArchiveMember.id > self._after_id).order_by(ArchiveMember.id).limit(STREAM_ROWS)
        rows = db.session.execute(query).all()
        for row_id, parent, name, size in rows:
            self._after_id = row_id
            path = member_path(parent, name)
            if self._wanted(path):
                self._window[path] = size
        self._exhausted = len(rows) < STREAM_ROWS

    def _look_up(self, key: str) -> int | None:
        parent, _, name = key.rpartition("/")
        query = self._files().where(ArchiveMember.parent == parent, ArchiveMember.name == name)
        return db.session.execute(query.with_only_columns(ArchiveMember.size).limit(1)).scalar()
