"""The basket: paths an operator ticked in one backup, kept across folders and searches until the restore.

Kept in the database per user and backup, not in the session: the session is a signed cookie (about 4 KB),
which holds a few dozen paths at best, and a hidden form field is lost when the operator opens another
folder. A basket holds at most ``MAX_ITEMS`` paths (beyond that, tick a folder); each row records the
catalogued size (a folder: the bytes of every file under it) so the restore panel shows a total without
reading the catalog again.
"""

from __future__ import annotations

import os

from sqlalchemy import and_, delete, func, or_, select

from ..errors import N_, ValidationError
from ..extensions import db
from ..models import ArchiveMember, BasketItem
from ..paths import display
from .browse import _successor, implicit_folders
from .selection import normalize_pattern

MAX_ITEMS = 1000


class BasketFull(ValidationError):
    template = N_("the basket holds at most %(max)s paths: tick a folder instead")
    params = ("max",)


def items(user_id: int, job_id: int) -> list[BasketItem]:
    return list(db.session.scalars(select(BasketItem).where(BasketItem.user_id == user_id, BasketItem.job_id == job_id)
                                   .order_by(BasketItem.path)))


def paths(user_id: int, job_id: int) -> list[str]:
    return [item.path for item in items(user_id, job_id)]


def _member(catalog_id: int, path: str) -> tuple[str, int] | None:
    """(kind, size) of a catalogued path (None: not in the catalog); a folder's size is the bytes of the files
    under it, a folder above the backed-up sources has no row of its own."""
    parent, _, name = path.rpartition("/")
    row = db.session.execute(select(ArchiveMember.kind, ArchiveMember.size).where(
        ArchiveMember.job_id == catalog_id, ArchiveMember.parent == parent, ArchiveMember.name == name,
    ).limit(1)).first()
    if row is None and not implicit_folders(catalog_id, path):
        return None
    if row is not None and row.kind != "dir":
        return row.kind, row.size or 0
    return "dir", folder_bytes(catalog_id, path)


def folder_bytes(catalog_id: int, path: str) -> int:
    """Bytes of the files anywhere under a folder: one range of the (job_id, parent, name) index."""
    below = os.fsencode(path) + b"/"
    return db.session.scalar(select(func.coalesce(func.sum(ArchiveMember.size), 0)).where(
        ArchiveMember.job_id == catalog_id, ArchiveMember.kind == "file",
        or_(ArchiveMember.parent == path,
            and_(ArchiveMember.parent >= below, ArchiveMember.parent < _successor(below))),
    )) or 0


def tick(user_id: int, job_id: int, catalog_id: int, raw: str, on: bool) -> None:
    """Put a path in the basket (``on``) or take it out; a path the catalog does not hold is refused."""
    path = normalize_pattern(raw)
    where = (BasketItem.user_id == user_id, BasketItem.job_id == job_id, BasketItem.path == path)
    if not on:
        db.session.execute(delete(BasketItem).where(*where))
        db.session.commit()
        return
    if db.session.scalar(select(BasketItem.id).where(*where)) is not None:
        return
    count = db.session.scalar(select(func.count(BasketItem.id)).where(*where[:2]))
    if count >= MAX_ITEMS:
        raise BasketFull(MAX_ITEMS)
    member = _member(catalog_id, path)
    if member is None:
        raise ValidationError(N_("path %(path)s is not in this backup"), field="path", path=display(path))
    db.session.add(BasketItem(user_id=user_id, job_id=job_id, path=path, kind=member[0], size=member[1]))
    db.session.commit()


def clear(user_id: int, job_id: int) -> None:
    db.session.execute(delete(BasketItem).where(BasketItem.user_id == user_id, BasketItem.job_id == job_id))
    db.session.commit()
