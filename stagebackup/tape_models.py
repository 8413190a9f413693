"""Tape tables: the media inventory, each file written to a tape, pools' rules, and what the drives last showed.

Kept apart from ``models.py`` (the jobs, archives and settings tables) so each module holds one kind of table.
They share ``db.metadata``: ``create_app`` imports this module beside ``models`` so Alembic, ``create_all``
and the database copy see every table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .dbtypes import JSONText, MessageText, utcnow
from .extensions import db


class Tape(db.Model):
    """Media inventory."""

    __tablename__ = "tapes"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(64), unique=True)
    pool: Mapped[str] = mapped_column(String(64), default="default")
    uuid: Mapped[str] = mapped_column(String(36))
    # labelled | full | expired (every file past its pool's retention: may be labelled over) | retired (history)
    state: Mapped[str] = mapped_column(String(16), default="labelled")
    capacity_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_used: Mapped[int] = mapped_column(BigInteger, default=0)
    write_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TapeFile(db.Model):
    """One file on a tape: the label (file 0), an archive or a piece of one, or a session index."""

    __tablename__ = "tape_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    tape_id: Mapped[int] = mapped_column(ForeignKey("tapes.id"))
    file_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # label | archive | index
    archive_id: Mapped[int | None] = mapped_column(ForeignKey("archives.id"), nullable=True, index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    piece: Mapped[int] = mapped_column(Integer, default=1)  # an archive spanning tapes has pieces 1..n
    block_size: Mapped[int] = mapped_column(Integer, default=0)
    blocks: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    written_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    void: Mapped[bool] = mapped_column(Boolean, default=False)  # a partial file left by an interrupted job
    # Past its pool's retention, or its archive was pruned or deleted with its project: the row stays as history.
    expired_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (UniqueConstraint("tape_id", "file_number"),)


class TapePool(db.Model):
    """How a pool's tapes are used: how long their files are kept and which tape a backup writes to.
    A pool a tape or project names without a row here keeps files forever and appends."""

    __tablename__ = "tape_pools"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: files never expire
    allocation: Mapped[str] = mapped_column(String(8), default="append")  # append | job | day
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Drive(db.Model):
    """What the worker last saw of each configured drive; the web page reads this, never the device."""

    __tablename__ = "drives"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    device: Mapped[str] = mapped_column(String(255))
    loaded_label: Mapped[str | None] = mapped_column(String(64), nullable=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    write_protected: Mapped[bool] = mapped_column(Boolean, default=False)
    busy_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str | None] = mapped_column(MessageText, nullable=True)  # English
    # The message as its catalogue template and values (errors.py), for the page's language.
    message_template: Mapped[str | None] = mapped_column(MessageText, nullable=True)
    message_values: Mapped[dict | None] = mapped_column(JSONText, nullable=True)
    # What MTIOCGET last said (mtio.DriveStatus): None until a process read the drive's status.
    file_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    block_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    density: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status_flags: Mapped[list | None] = mapped_column(JSONText, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
