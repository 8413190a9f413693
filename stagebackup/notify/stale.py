""""No good backup for longer than X": checked by the scheduler's courier, written to the outbox.

A good backup is a backup job that ended succeeded or with warnings (its archives are restorable). A project
that never had one counts from its creation. A target hears about a stale project once per X hours while it
stays stale, not at every check.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..dbtypes import utcnow
from ..extensions import db
from ..models import SUCCEEDED, WARNING, Job, Notification, NotificationTarget, Project
from .events import STALE_EVENT


def last_good_backup(project_id: int) -> datetime | None:
    return db.session.scalar(select(func.max(Job.finished_at)).where(
        Job.project_id == project_id, Job.kind == "backup", Job.status.in_((SUCCEEDED, WARNING))))


def _last_told(target_id: int, project_id: int) -> datetime | None:
    return db.session.scalar(select(func.max(Notification.created_at)).where(
        Notification.target_id == target_id, Notification.event == STALE_EVENT,
        Notification.project_id == project_id))


def _projects_of(target: NotificationTarget) -> list[Project]:
    query = select(Project).order_by(Project.id)
    if target.project_id is not None:
        query = query.where(Project.id == target.project_id)
    return list(db.session.scalars(query))


def check(now: datetime | None = None) -> int:
    """Queue a stale message for each (target, project) that is due one; commits; returns how many."""
    now = now or utcnow()
    queued = 0
    for target in db.session.scalars(select(NotificationTarget).where(NotificationTarget.stale_after_hours > 0)):
        if STALE_EVENT not in (target.events or []):
            continue
        limit = timedelta(hours=target.stale_after_hours)
        for project in _projects_of(target):
            last_good = last_good_backup(project.id)
            since = last_good or project.created_at
            if now - since <= limit:
                continue
            told = _last_told(target.id, project.id)
            if told is not None and told > max(since, now - limit):
                continue
            db.session.add(Notification(
                target_id=target.id, event=STALE_EVENT, project_id=project.id, next_attempt_at=now,
                details={"hours": target.stale_after_hours,
                         "last": last_good.isoformat(sep=" ", timespec="minutes") + " UTC" if last_good else None}))
            queued += 1
    db.session.commit()
    return queued
