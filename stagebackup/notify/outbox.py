"""The outbox: events are written as rows in the transaction that raised them, and delivered later
(delivery.py).

These functions never commit and never send: the jobs layer calls them inside its own transaction, so a job's
ending and its notifications commit together, and no network call ever blocks a job.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from ..dbtypes import utcnow
from ..extensions import db
from ..models import Job, Notification, NotificationTarget
from .events import ENDINGS, WAITING_EVENT


def _targets_for(event: str, project_id: int | None) -> list[NotificationTarget]:
    scope = NotificationTarget.project_id.is_(None)
    if project_id is not None:
        scope = or_(scope, NotificationTarget.project_id == project_id)
    return [t for t in db.session.scalars(select(NotificationTarget).where(scope)) if event in (t.events or [])]


def enqueue(event: str, *, job_id: int | None, project_id: int | None, details: dict | None = None) -> int:
    """One outbox row per target that ticked ``event`` for this project (no commit); returns how many."""
    chosen = _targets_for(event, project_id)
    for target in chosen:
        db.session.add(Notification(target_id=target.id, event=event, job_id=job_id, project_id=project_id,
                                    details=details, next_attempt_at=utcnow()))
    return len(chosen)


def job_ended(job: Job) -> None:
    """Called by ``queue.close`` with the job's final status set."""
    event = ENDINGS.get(job.status)
    if event is not None:
        enqueue(event, job_id=job.id, project_id=job.project_id)


def job_waiting(job_id: int, project_id: int | None, prompt: str | None) -> None:
    """Called by ``state.set_waiting_for_media`` when a running job starts waiting (not on each new prompt)."""
    enqueue(WAITING_EVENT, job_id=job_id, project_id=project_id, details={"prompt": prompt})


