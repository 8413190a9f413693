"""The drive card: what the worker last wrote into ``drives`` for each configured drive, and which
jobs wait for media there. The web process never touches a device.

Each drive gets one state (``DriveView.state``) that the card words in the page's language; the stored
message shows only where it adds to that state, translated from its template when it has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import func, select

from ..errors import translate
from ..extensions import db
from ..models import WAITING_MEDIA, Job, Project
from ..tape.drives import VIRTUAL
from ..tape.errors import NoMedium, Unlabelled
from ..tape_models import Drive, Tape, TapeFile

UNREPORTED, OFFLINE, EMPTY, BLANK, LOADED, BUSY, WAITING = (
    "unreported", "offline", "empty", "blank", "loaded", "busy", "waiting")
# Messages the drive's state already says (or the worker's English prose for it): not repeated beside it.
_SAID_BY_STATE = {NoMedium.template, Unlabelled.template}
_TAPE_FULL = re.compile(r"^tape (?P<label>\S+) full$")  # sink.py's note when it moves on to the next tape


@dataclass(frozen=True)
class WaitingJob:
    job_id: int
    project: str
    pool: str | None
    since: datetime | None  # its last progress: a job waiting for media makes none
    label: str | None = None  # the tape a restore or verify asks for


@dataclass(frozen=True)
class DriveView:
    name: str
    device: str
    row: Drive | None  # None: no worker has reported this drive yet
    waiting: list[WaitingJob]
    tape: Tape | None = None  # the inventory row of the loaded tape
    job: Job | None = None  # the job that has the drive
    writing_file: int | None = None  # the tape file that job writes now

    @property
    def busy_job_id(self) -> int | None:
        return self.row.busy_job_id if self.row else None

    @property
    def virtual(self) -> bool:
        return self.device == VIRTUAL

    @property
    def state(self) -> str:
        row = self.row
        if row is None:
            return UNREPORTED
        if row.busy_job_id:
            return BUSY
        if self.waiting:
            return WAITING
        if not row.online:
            return EMPTY if row.message_template in (None, NoMedium.template) else OFFLINE
        return LOADED if row.loaded_label else BLANK

    @property
    def note(self) -> str | None:
        """The stored message in the page's language, unless the state already says it."""
        row = self.row
        if row is None or not row.message or self.state in (BUSY, WAITING):
            return None
        if row.message_template:
            if row.message_template in _SAID_BY_STATE:
                return None
            return translate(gettext, row.message_template, row.message_values) or row.message
        full = _TAPE_FULL.match(row.message)
        return gettext("磁带 %(label)s 已满", label=full["label"]) if full else row.message

    @property
    def free_bytes(self) -> int | None:
        if self.tape is None or not self.tape.capacity_bytes:
            return None
        return max(0, self.tape.capacity_bytes - self.tape.bytes_used)

    @property
    def fill_eta_s(self) -> float | None:
        """Seconds until the loaded tape is full at the job's current rate."""
        rate = self.job.rate_bytes_s if self.job is not None else None
        free = self.free_bytes
        return free / rate if rate and free is not None else None

    @property
    def updated_at(self) -> datetime | None:
        return self.row.updated_at if self.row else None


@dataclass(frozen=True)
class DrivePanel:
    drives: list[DriveView]

    @property
    def live(self) -> bool:
        """Poll while something happens on a drive; an idle panel stays still."""
        return any(d.busy_job_id or d.waiting for d in self.drives)


def panel() -> DrivePanel:
    """Configured drives in name order, plus drives a worker reported that config no longer lists."""
    configured: dict[str, str] = dict(current_app.config["DRIVES"] or {})
    rows = {row.name: row for row in db.session.scalars(select(Drive))}
    waiting: dict[str, list[WaitingJob]] = {}
    for job_id, drive, project, pool, since, label in db.session.execute(
        select(Job.id, Job.drive, Job.project_name, Project.dest_pool, Job.progress_at, Job.waiting_label)
        .outerjoin(Project, Project.id == Job.project_id)
        .where(Job.status == WAITING_MEDIA)
        .order_by(Job.id)
    ):
        waiting.setdefault(drive or "", []).append(WaitingJob(job_id, project, pool, since, label))
    names = sorted(set(configured) | set(rows))
    labels = [row.loaded_label for row in rows.values() if row.loaded_label]
    tapes = {t.label: t for t in db.session.scalars(select(Tape).where(Tape.label.in_(labels)))} if labels else {}
    busy_ids = [row.busy_job_id for row in rows.values() if row.busy_job_id]
    jobs = {j.id: j for j in db.session.scalars(select(Job).where(Job.id.in_(busy_ids)))} if busy_ids else {}
    writing = dict(db.session.execute(
        select(TapeFile.job_id, func.max(TapeFile.file_number)).where(TapeFile.job_id.in_(busy_ids))
        .group_by(TapeFile.job_id)).all()) if busy_ids else {}
    views = []
    for name in names:
        row = rows.get(name)
        busy = row.busy_job_id if row else None
        views.append(DriveView(
            name, configured.get(name) or (row.device if row else ""), row, waiting.get(name, []),
            tape=tapes.get(row.loaded_label) if row and row.loaded_label else None,
            job=jobs.get(busy) if busy else None, writing_file=writing.get(busy) if busy else None))
    return DrivePanel(views)
