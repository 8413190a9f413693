"""The drive card: what the worker last wrote into ``drives`` for each configured drive, and which
jobs wait for media there. The web process never touches a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import WAITING_MEDIA, Drive, Job, Project


@dataclass(frozen=True)
class WaitingJob:
    job_id: int
    project: str
    pool: str | None


@dataclass(frozen=True)
class DriveView:
    name: str
    device: str
    row: Drive | None  # None: no worker has reported this drive yet
    waiting: list[WaitingJob]

    @property
    def busy_job_id(self) -> int | None:
        return self.row.busy_job_id if self.row else None

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
    for job_id, drive, project, pool in db.session.execute(
        select(Job.id, Job.drive, Job.project_name, Project.dest_pool)
        .outerjoin(Project, Project.id == Job.project_id)
        .where(Job.status == WAITING_MEDIA)
        .order_by(Job.id)
    ):
        waiting.setdefault(drive or "", []).append(WaitingJob(job_id, project, pool))
    names = sorted(set(configured) | set(rows))
    return DrivePanel([
        DriveView(name, configured.get(name) or (rows[name].device if name in rows else ""), rows.get(name),
                  waiting.get(name, []))
        for name in names
    ])
