"""Every statement that changes a *running* job: stages, progress, log lines, plan, waiting for media, time limit.

With ``queue.py`` (enqueue, claim, finish, cancel, recover) this is the one writer of job state. The pipeline
and the tape layer never write a job: they report facts (a plan, "waiting for a tape", "tape loaded") to the
job's reporter (``progress.JobReporter``), which calls these functions on the job's own thread. A test
(tests/unit/test_job_state_writers.py) fails when any other module writes ``jobs``, ``job_stages`` or
``job_logs``.

The functions do not commit: the reporter commits once per flush, so the worker never holds a transaction
(SQLite's write lock) between flushes.
"""

from __future__ import annotations

from sqlalchemy import select, update

from ..bulk import insert_rows
from ..dbtypes import utcnow
from ..extensions import db
from ..models import RUNNING, WAITING_MEDIA, Job, JobLog, JobStage
from ..notify import outbox

LOG_COLUMNS = ("job_id", "at", "tag", "message")


def start_stage(job_id: int, code: str) -> None:
    now = utcnow()
    row = db.session.get(JobStage, (job_id, code))
    if row is None:
        db.session.add(JobStage(job_id=job_id, code=code, started_at=now))
    else:
        row.started_at, row.finished_at, row.failed_at, row.message = now, None, None, None


def finish_stage(job_id: int, code: str) -> None:
    db.session.execute(
        update(JobStage).where(JobStage.job_id == job_id, JobStage.code == code).values(finished_at=utcnow())
    )


def fail_open_stages(job_id: int, message: str) -> None:
    """The job ended badly: every stage still running turns red with the reason."""
    db.session.execute(
        update(JobStage)
        .where(JobStage.job_id == job_id, JobStage.started_at.is_not(None), JobStage.finished_at.is_(None),
               JobStage.failed_at.is_(None))
        .values(failed_at=utcnow(), message=message)
    )


def insert_logs(rows: list[tuple]) -> None:
    """Buffered ``(job_id, at, tag, message)`` rows, in one multi-row insert."""
    insert_rows(JobLog.__table__, LOG_COLUMNS, rows, convert=("at", "message"))


def write_progress(job_id: int, values: dict, *, advanced: bool) -> None:
    """Progress columns; ``progress_at`` moves only when bytes or files did (the heartbeat is separate)."""
    if advanced:
        values = {**values, "progress_at": utcnow()}
    db.session.execute(update(Job).where(Job.id == job_id).values(**values))


def read_flags(job_id: int) -> tuple[bool, str]:
    """(cancel requested, status): read at every flush, so cancel and a time-out cost no extra query."""
    row = db.session.execute(select(Job.cancel_requested, Job.status).where(Job.id == job_id)).one()
    return bool(row.cancel_requested), row.status


def record_plan(job_id: int, plan: dict) -> None:
    db.session.execute(update(Job).where(Job.id == job_id).values(plan=plan))


def set_waiting_for_media(job_id: int, waiting: bool, stage: str, message: str | None,
                          label: str | None = None) -> None:
    """``waiting_media`` (yellow badge, the prompt on the stage, the tape label wanted if one is) or back to
    ``running``. Starting to wait queues the "waiting for media" notification (once, not for each new prompt).

    Read, then update: the job thread is this row's only writer while it runs, and MariaDB has no
    ``UPDATE … RETURNING``; the update's own condition still keeps a cancelled job cancelled."""
    before = db.session.execute(select(Job.status, Job.project_id).where(Job.id == job_id)).one_or_none()
    changed = db.session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_((RUNNING, WAITING_MEDIA)))
        .values(status=WAITING_MEDIA if waiting else RUNNING, waiting_label=label if waiting else None)
    ).rowcount
    if waiting and changed and before is not None and before.status == RUNNING:
        outbox.job_waiting(job_id, before.project_id, message)
    db.session.execute(
        update(JobStage).where(JobStage.job_id == job_id, JobStage.code == stage).values(message=message)
    )


def link_catalog(job_id: int, owner_job_id: int) -> None:
    """A sync run found its mirror unchanged: its catalog is the one ``owner_job_id`` recorded."""
    db.session.execute(update(Job).where(Job.id == job_id).values(catalog_job_id=owner_job_id))
