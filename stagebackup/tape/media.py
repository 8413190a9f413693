"""The media inventory (``tapes``), the tape catalog rows (``tape_files``) and the ``drives`` rows.

Only the CLI and the worker call these: they are the processes that touch devices. The web page reads the
rows they leave behind (loaded label, online, write-protected, busy job, message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import select, update

from ..dbtypes import utcnow
from ..errors import StageBackupError
from ..extensions import db
from ..models import RUNNING, WAITING_MEDIA, Job
from ..tape_models import Drive, Tape, TapeFile
from .drives import device_of, is_virtual
from .mtio import DriveStatus

# Native capacities by density code, for the inventory and the tape plan (LTO-5…9).
NATIVE_CAPACITY = {0x58: 1_500 * 10**9, 0x5A: 2_500 * 10**9, 0x5C: 6 * 10**12, 0x5D: 9 * 10**12,
                   0x5E: 12 * 10**12, 0x60: 18 * 10**12}
LABELLED, FULL, EXPIRED, RETIRED = "labelled", "full", "expired", "retired"


def get_tape(label: str) -> Tape | None:
    return db.session.scalar(select(Tape).where(Tape.label == label))


def tape_by_uuid(uuid: str) -> Tape | None:
    return db.session.scalar(select(Tape).where(Tape.uuid == uuid))


def capacity_for(config: Mapping, drive: str, status: DriveStatus | None, medium_capacity: int | None) -> int:
    if medium_capacity:
        return medium_capacity
    if status is not None and status.density in NATIVE_CAPACITY:
        return NATIVE_CAPACITY[status.density]
    return int(config["VTAPE_CAPACITY_BYTES"]) if is_virtual(config, drive) else 0


def record_label(label: dict, *, capacity: int, encoded: bytes) -> Tape:
    """A freshly labelled tape enters the inventory; a tape relabelled over an old one retires the old
    row (renamed, its files void) so the catalog history stays and the label can be reused."""
    old = get_tape(label["label"])
    if old is not None:
        retire(old)
    tape = Tape(label=label["label"], pool=label["pool"], uuid=label["uuid"], state=LABELLED,
                capacity_bytes=capacity, bytes_used=len(encoded), write_protected=False)
    db.session.add(tape)
    db.session.flush()
    db.session.add(TapeFile(tape_id=tape.id, file_number=0, kind="label", block_size=len(encoded), blocks=1,
                            bytes=len(encoded), sha256=hashlib.sha256(encoded).hexdigest(), written_at=utcnow()))
    return tape


def retire_by_uuid(uuid: str) -> None:
    """The tape with this uuid was overwritten by a new label."""
    tape = tape_by_uuid(uuid)
    if tape is not None and tape.state != RETIRED:
        retire(tape)


def retire(tape: Tape) -> None:
    """The tape's data is gone (labelled over or erased): its row and files stay as history, renamed so the
    label can be used again, the files void and expired."""
    tape.label = f"{tape.label}~{tape.uuid[:8]}"[:64]
    tape.state = RETIRED
    now = utcnow()
    db.session.execute(update(TapeFile).where(TapeFile.tape_id == tape.id).values(void=True))
    db.session.execute(update(TapeFile).where(TapeFile.tape_id == tape.id, TapeFile.expired_at.is_(None))
                       .values(expired_at=now))
    db.session.flush()


def update_drive(config: Mapping, drive: str, *, status: DriveStatus | None = None, label: str | None = None,
                 busy_job_id: int | None = None, message: str | StageBackupError | None = None,
                 keep_label: bool = False) -> None:
    """Record what this process just saw of ``drive`` (the caller commits). A message given as an error keeps
    its template and values, so the drive card shows it in the page's language; a plain string stays English."""
    row = db.session.get(Drive, drive)
    if row is None:
        row = Drive(name=drive, device=device_of(config, drive))
        db.session.add(row)
    row.device = device_of(config, drive)
    if status is not None:
        _record_status(row, status)
    if not keep_label and status is not None and row.online:
        row.loaded_label = label
    row.busy_job_id = busy_job_id
    row.message = None if message is None else str(message)
    row.message_template = message.template if isinstance(message, StageBackupError) else None
    row.message_values = message.values if isinstance(message, StageBackupError) else None
    row.updated_at = utcnow()


def _record_status(row: Drive, status: DriveStatus) -> None:
    row.online = status.online and not status.door_open
    row.write_protected = status.write_protected
    if not row.online:
        row.loaded_label = None
    row.file_number, row.block_number, row.density = status.file_number, status.block_number, status.density
    row.status_flags = status.flags()


def drives_to_read(config: Mapping, home: str | None, job_id: int) -> list[str]:
    """Where a restore or verify looks for a tape: its own drive first, then every other configured drive
    that no other job holds (writing on it, or reserved by a queued-to-run or waiting job)."""
    held = {row.name for row in db.session.scalars(
        select(Drive).where(Drive.busy_job_id.is_not(None), Drive.busy_job_id != job_id))}
    held |= set(db.session.scalars(select(Job.drive).where(
        Job.id != job_id, Job.drive.is_not(None), Job.status.in_((RUNNING, WAITING_MEDIA)))))
    others = [name for name in sorted(config["DRIVES"] or {}) if name != home and name not in held]
    db.session.commit()  # no transaction stays open while the tapes are read
    return ([home] if home else []) + others


def drive_row(drive: str) -> Drive | None:
    return db.session.get(Drive, drive)


def tape_dict(tape: Tape) -> dict:
    return {
        "label": tape.label, "pool": tape.pool, "uuid": tape.uuid, "state": tape.state,
        "bytes_used": tape.bytes_used, "capacity_bytes": tape.capacity_bytes,
        "free_bytes": max(0, tape.capacity_bytes - tape.bytes_used), "write_protected": tape.write_protected,
        "created_at": tape.created_at.isoformat() + "Z",
    }


def files_of(tape: Tape) -> list[TapeFile]:
    return list(db.session.scalars(
        select(TapeFile).where(TapeFile.tape_id == tape.id).order_by(TapeFile.file_number)))


def file_row(label: str, file_number: int) -> TapeFile | None:
    return db.session.scalar(
        select(TapeFile).join(Tape, Tape.id == TapeFile.tape_id)
        .where(Tape.label == label, TapeFile.file_number == file_number)
    )
