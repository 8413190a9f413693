"""A backup job's hold on a drive: mount a suitable tape, append at end of data, swap at end of medium.

A tape is suitable when it carries our label, is in the inventory with the same uuid, belongs to the
project's pool, is not full or retired, and is not write-protected. At the start of a job an unsuitable
tape is an error with the reason (no medium, write-protected, unlabelled, foreign, drive busy…), except a
full tape or one from another pool: then, as at end of medium, the job waits (``waiting_media``, yellow
badge, "load a new tape in DRIVE") with the drive closed so the operator can load and label a tape, and
polls until one is suitable. The worker's heartbeat thread keeps the job alive meanwhile, and cancel or
a worker stop end the wait at the next poll.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

from flask import Flask, has_app_context
from sqlalchemy import delete, func, select, update

from ..dbtypes import utcnow
from ..extensions import db
from ..models import RUNNING, WAITING_MEDIA, Job, JobLog, JobStage, Tape, TapeFile
from . import media
from .drives import open_drive
from .errors import TapeError, UnknownTape, Unlabelled
from .handle import TapeHandle
from .label import read_label

MEDIA_POLL_S = 2.0
MIN_FREE_BYTES = 1024 * 1024


class NeedMedia(Exception):
    """The tape in the drive cannot take this job's data; the message says why."""


class DriveSession:
    def __init__(self, app: Flask, config: Mapping, *, drive: str, pool: str, job_id: int, reporter,
                 poll_s: float = MEDIA_POLL_S):
        self.app, self.config, self.drive, self.pool = app, config, drive, pool
        self.job_id, self.reporter, self.poll_s = job_id, reporter, poll_s
        self.tape: TapeHandle | None = None
        self.label: dict | None = None
        self.tape_id: int | None = None
        self.next_file = 0
        self.used_labels: list[str] = []

    def db_context(self):
        """DB work may run in the pipeline's copy thread: give it an app context of its own there."""
        return contextlib.nullcontext() if has_app_context() else self.app.app_context()

    # -- mounting ----------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        if self.tape is not None:
            return
        try:
            self._mount(exclude=())
        except NeedMedia as why:
            self.wait_for_media(str(why))

    def _mount(self, exclude) -> None:
        tape = open_drive(self.config, self.drive, write=True)
        try:
            label = read_label(tape, self.drive)
            if label is None:
                raise Unlabelled(self.drive)
            with self.db_context():
                row = media.get_tape(label["label"])
                if row is None or row.uuid != label["uuid"]:
                    raise UnknownTape(label["label"], f": run `flask tape scan {self.drive}` to add it")
                if row.state != media.LABELLED or label["label"] in exclude:
                    raise NeedMedia(f"tape {row.label} is {row.state if row.state != 'labelled' else 'full'}")
                if row.pool != self.pool:
                    raise NeedMedia(f"tape {row.label} belongs to pool {row.pool}, not {self.pool}")
                if row.capacity_bytes and row.capacity_bytes - row.bytes_used < MIN_FREE_BYTES:
                    raise NeedMedia(f"tape {row.label} is full")
                tape_id = row.id
                db.session.commit()
            next_file = tape.space_to_end_of_data()
            with self.db_context():
                self._reconcile(tape_id, label["label"], next_file)
                media.update_drive(self.config, self.drive, status=tape.status(), label=label["label"],
                                   busy_job_id=self.job_id, message=f"job #{self.job_id} writing")
                db.session.commit()
        except BaseException:
            with self.db_context():
                db.session.rollback()  # a transaction left open would hold SQLite's write lock while we wait
            tape.close()
            raise
        self.tape, self.label, self.tape_id, self.next_file = tape, label, tape_id, next_file
        if label["label"] not in self.used_labels:
            self.used_labels.append(label["label"])
        self.reporter.log("INFO", f"tape {label['label']} mounted in {self.drive}; appending as file {next_file}")

    def _reconcile(self, tape_id: int, label: str, next_file: int) -> None:
        """Catalog rows beyond the tape's end: void ones (a job died before writing) go; others mean the
        tape lost data the catalog still lists, which must not be papered over."""
        db.session.execute(delete(TapeFile).where(
            TapeFile.tape_id == tape_id, TapeFile.file_number >= next_file, TapeFile.void.is_(True)))
        last = db.session.scalar(select(func.max(TapeFile.file_number)).where(TapeFile.tape_id == tape_id))
        if last is not None and last >= next_file:
            db.session.rollback()
            raise TapeError(self.drive, f"tape {label} ends before file {last} that the catalog lists: "
                                        "it was overwritten or is damaged; check it with `flask tape scan`")

    def release(self, message: str | None = None) -> None:
        tape, self.tape = self.tape, None
        if tape is None:
            return
        try:
            status = tape.status()
        finally:
            tape.close()
        with self.db_context():
            media.update_drive(self.config, self.drive, status=status, label=self.label and self.label["label"],
                               busy_job_id=None, message=message)
            db.session.commit()

    # -- end of medium -----------------------------------------------------------------------------
    def mark_full(self) -> None:
        with self.db_context():
            db.session.execute(update(Tape).where(Tape.id == self.tape_id).values(state=media.FULL,
                                                                                     updated_at=utcnow()))
            db.session.commit()

    def wait_for_media(self, reason: str) -> None:
        """Block until a suitable tape is mounted; the job shows waiting_media meanwhile."""
        prompt = f"load a new tape in {self.drive} (pool {self.pool})"
        self._set_waiting(True, f"{prompt}: {reason}")
        last = reason
        try:
            while True:
                deadline = time.monotonic() + self.poll_s
                while time.monotonic() < deadline:
                    with self.db_context():
                        self.reporter.checkpoint()  # cancel and worker stop end the wait here
                    time.sleep(min(0.2, self.poll_s))
                try:
                    self._mount(exclude=self.used_labels[-1:])
                    break
                except (TapeError, NeedMedia) as why:
                    if str(why) != last:
                        last = str(why)
                        self._set_waiting(True, f"{prompt}: {last}")
        finally:
            if self.tape is not None:
                self._set_waiting(False, None)

    def _set_waiting(self, waiting: bool, message: str | None) -> None:
        with self.db_context():
            db.session.execute(update(Job).where(Job.id == self.job_id, Job.status.in_((RUNNING, WAITING_MEDIA)))
                               .values(status=WAITING_MEDIA if waiting else RUNNING))
            db.session.execute(update(JobStage).where(JobStage.job_id == self.job_id, JobStage.code == "copy")
                               .values(message=message))
            db.session.add(JobLog(job_id=self.job_id, tag="INFO",
                                  message=message if waiting else f"tape {self.label['label']} loaded: continuing"))
            media.update_drive(self.config, self.drive, busy_job_id=self.job_id if not waiting else None,
                               message=message, keep_label=True)
            db.session.commit()
