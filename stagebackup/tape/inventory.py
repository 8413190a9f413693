"""The media inventory as the operator reads it (``flask tape list|files`` and the tapes page): each tape's
state, fill and dates, where it is, and its files in tape order. Reads rows only: no device is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..extensions import db
from ..models import Archive
from ..tape_models import Drive, Tape, TapeFile
from . import media, vlibrary
from .drives import VIRTUAL

# What the page calls a tape's state (the inventory's ``state`` plus its fill and write-protect tab).
BLANK, APPENDABLE, FULL, EXPIRED, RETIRED, WRITE_PROTECTED = (
    "blank", "appendable", "full", "expired", "retired", "write_protected")


@dataclass(frozen=True)
class TapeSummary:
    tape: Tape
    state: str
    files: int
    first_write: datetime | None
    last_write: datetime | None
    last_verify: datetime | None
    drive: str | None  # the drive it was last seen in; None: on the shelf

    @property
    def percent_used(self) -> int:
        cap = self.tape.capacity_bytes or 0
        return min(100, round(100 * (self.tape.bytes_used or 0) / cap)) if cap else 0


def page_state(tape: Tape, data_files: int) -> str:
    """``data_files``: the tape's archive and index files (none: labelled but blank)."""
    if tape.state in (media.RETIRED, media.EXPIRED):
        return RETIRED if tape.state == media.RETIRED else EXPIRED
    if tape.write_protected:
        return WRITE_PROTECTED
    if tape.state == media.FULL or (tape.capacity_bytes and tape.bytes_used >= tape.capacity_bytes):
        return FULL
    return APPENDABLE if data_files else BLANK


def summaries(pool: str | None = None) -> list[TapeSummary]:
    """Every tape of the inventory (of one pool), by pool and label, with its catalog counts (one query)."""
    counts = {row.tape_id: row for row in db.session.execute(
        select(TapeFile.tape_id, func.count().label("files"), func.min(TapeFile.written_at).label("first"),
               func.max(TapeFile.written_at).label("last"), func.max(TapeFile.verified_at).label("verified"))
        .where(TapeFile.kind != "label").group_by(TapeFile.tape_id))}
    in_drive = {label: name for name, label in db.session.execute(
        select(Drive.name, Drive.loaded_label).where(Drive.loaded_label.is_not(None)))}
    result = []
    query = select(Tape).order_by(Tape.pool, Tape.label)
    for tape in db.session.scalars(query if pool is None else query.where(Tape.pool == pool)):
        c = counts.get(tape.id)
        files = c.files if c else 0
        result.append(TapeSummary(tape, page_state(tape, files), files, c.first if c else None,
                                  c.last if c else None, c.verified if c else None, in_drive.get(tape.label)))
    return result


def file_rows(tape: Tape) -> list[dict]:
    """The catalog of one tape, one dict per tape file in tape order."""
    names = dict(db.session.execute(select(Archive.id, Archive.name).join(
        TapeFile, TapeFile.archive_id == Archive.id).where(TapeFile.tape_id == tape.id)).all())
    return [{
        "label": tape.label, "file_number": f.file_number, "kind": f.kind, "job": f.job_id,
        "archive_id": f.archive_id, "archive": names.get(f.archive_id), "piece": f.piece, "bytes": f.bytes,
        "blocks": f.blocks, "block_size": f.block_size, "sha256": f.sha256,
        "written_at": f.written_at.isoformat() + "Z" if f.written_at else None,
        "verified_at": f.verified_at.isoformat() + "Z" if f.verified_at else None, "void": f.void,
        "expired_at": f.expired_at.isoformat() + "Z" if f.expired_at else None,
    } for f in media.files_of(tape)]


def shelf(config: Mapping) -> list[dict]:
    """The virtual cartridges (none without a virtual drive), each with the drive it is in, if any."""
    if VIRTUAL not in dict(config["DRIVES"] or {}).values():
        return []
    vdir = str(config["VTAPE_DIR"])
    if not os.path.isdir(vdir):
        return []
    return [{**c, "drives": vlibrary.loaded_in(vdir, c["name"])} for c in vlibrary.list_cartridges(vdir)]
