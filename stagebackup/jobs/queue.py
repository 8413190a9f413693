"""Every statement that enqueues, claims, heartbeats, finishes, cancels, retries and recovers jobs.

Keeping them in one module (as procrastinate does) makes the locking rules auditable in one read:
- one queued job per project and one running job per drive are partial unique indexes (models.py);
- claiming is a single UPDATE whose subquery uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on
  SQLite the same statement is a compare-and-set under the database write lock.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from .. import audit
from ..catalog_stream import drop_unfinished
from ..dbtypes import utcnow
from ..errors import N_, AlreadyQueued, ConflictError, JobCancelled, JobNotFound, ValidationError
from ..extensions import db
from ..models import (
    CANCELLED,
    FINAL_STATUSES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    WAITING_MEDIA,
    WARNING,
    Job,
    JobLog,
    JobStage,
    Project,
    Secret,
)
from ..notify import outbox
from ..paths import is_text
from ..stages import flow_for
from ..tape.ledger import void_unrecorded

log = logging.getLogger(__name__)
REMARK_MAX = 2000

def append_log(job_id: int, tag: str, message: str) -> None:
    db.session.add(JobLog(job_id=job_id, tag=tag, message=message))


#: The audit action recorded with each kind of job.
AUDIT_ACTIONS = {"backup": "job.run", "restore": "restore.run", "verify": "restore.verify"}


def enqueue(
    project: Project | None, *, actor: str, trigger: str = "manual", remark: str | None = None, kind: str = "backup",
    source_job_id: int | None = None, params: dict | None = None, drive: str | None = None,
    audit_details: dict | None = None, project_name: str | None = None,
) -> Job:
    """Queue a job and its audit row in one transaction; raises AlreadyQueued when the project has a backup
    waiting (the index decides). Any failure leaves neither row.

    The queue's policy lives here for every caller (web, CLI, restore, the scheduler): attempts come from
    ``STAGEBACKUP_JOB_MAX_ATTEMPTS``, except that a job carrying a typed password (``params["secret_id"]``)
    runs once, because that password is deleted when the attempt ends. Restore and verify jobs name the
    backup they read (``source_job_id``) and carry their options in ``params``; a job that needs a tape
    drive names it, so one drive runs one job at a time. ``actor`` is who asked ("cli:root", "web:…").
    A restore or verify of a backup whose project is gone (removed, or a catalog rebuilt from tape) has no
    project: it is named by ``project_name``, the backup's own snapshot.
    """
    if project is None and kind == "backup":
        raise TypeError("a backup job needs its project")
    name = project.name if project is not None else (project_name or "?")
    remark = (remark or "").strip() or None
    if remark and len(remark) > REMARK_MAX:
        raise ValidationError(N_("the remark is longer than %(n)s characters"), field="remark", n=REMARK_MAX)
    if remark and not is_text(remark):
        raise ValidationError(N_("the remark is not valid UTF-8"), field="remark")
    job = Job(
        project_id=project.id if project is not None else None,
        project_name=name,
        kind=kind,
        flow=flow_for(kind, *((project.dest_kind, project.mode) if project is not None else ("directory",))),
        trigger=trigger,
        remark=remark,
        status=QUEUED,
        max_attempts=max_attempts_for(params),
        run_after=utcnow(),
        source_job_id=source_job_id,
        params=params,
        drive=drive or (project.dest_drive if kind == "backup" and project.dest_kind == "tape" else None),
        timeout_s=project.job_timeout_s if kind == "backup" and project is not None else None,
    )
    db.session.add(job)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(
            select(Job.id).where(Job.project_id == project.id, Job.status == QUEUED, Job.kind == "backup")
        )
        raise AlreadyQueued(project.name, existing) from None
    append_log(job.id, "INFO", f"queued ({trigger})" + (f": {job.remark}" if job.remark else ""))
    audit.record(actor, AUDIT_ACTIONS.get(kind, f"{kind}.run"), f"job:{job.id}", remark=job.remark,
                 details={"project": name, **(audit_details or {})})
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return job


def max_attempts_for(params: dict | None) -> int:
    """The configured attempts; one for a job whose typed password dies with its first attempt."""
    if (params or {}).get("secret_id"):
        return 1
    return int(current_app.config["JOB_MAX_ATTEMPTS"])


def claim(worker_id: int, drive: str | None = None, now: datetime | None = None) -> int | None:
    """Take the oldest runnable job for this worker in one statement; returns its id or None."""
    now = now or utcnow()
    running = aliased(Job)
    # A job waiting for a tape still owns its drive: the next one must not take the cartridge it waits for.
    drive_busy = exists().where(
        running.status.in_((RUNNING, WAITING_MEDIA)), running.drive.is_not(None), running.drive == Job.drive
    )
    candidate = (
        select(Job.id)
        .where(Job.status == QUEUED, Job.run_after <= now, ~drive_busy)
        .order_by(Job.run_after, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if drive is not None:
        candidate = candidate.where(or_(Job.drive == drive, Job.drive.is_(None)))
    try:
        job_id = _take(candidate, worker_id, now)
    except IntegrityError:
        # Another worker took the same drive between our check and our update.
        db.session.rollback()
        return None
    if job_id is not None:
        append_log(job_id, "INFO", f"started by worker {worker_id} on {os.uname().nodename}")
    db.session.commit()
    return job_id


def _take(candidate, worker_id: int, now: datetime) -> int | None:
    """Mark the candidate job running for this worker; its id, or None when there was none to take.

    One ``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`` where the database has
    UPDATE … RETURNING (SQLite, PostgreSQL). MySQL and MariaDB have neither that nor an UPDATE whose
    subquery reads the table it updates: there the row is locked by the SELECT (SKIP LOCKED: another
    worker's candidate is passed over), then updated by id in the same transaction.
    """
    taken = update(Job).values(
        status=RUNNING, worker_id=worker_id, started_at=now, heartbeat_at=now, progress_at=now,
        attempts=Job.attempts + 1, cancel_requested=False,
    ).execution_options(synchronize_session=False)
    if db.session.get_bind().dialect.update_returning:
        stmt = taken.where(Job.id == candidate.scalar_subquery(), Job.status == QUEUED).returning(Job.id)
        return db.session.execute(stmt).scalar_one_or_none()
    job_id = db.session.execute(candidate).scalar_one_or_none()
    if job_id is not None:
        db.session.execute(taken.where(Job.id == job_id, Job.status == QUEUED))
    return job_id


def record_scanned_backup(project_name: str, remark: str | None, params: dict) -> Job:
    """A backup found in a tape's session index (``flask tape scan``): a finished job row that its archives
    hang on, as if it had run here (the caller commits)."""
    job = Job(project_name=project_name, kind="backup", flow="backup-tape", status=SUCCEEDED, trigger="scan",
              progress=100, finished_at=utcnow(), remark=remark, params=params)
    db.session.add(job)
    db.session.flush()
    return job


def register_partial_output(job_id: int, path: str) -> None:
    """Record a path before creating it, so a crash can never leave it behind unnoticed.

    The list is cleared when the job succeeds (finish); any other ending deletes what it names.
    """
    job = db.session.get(Job, job_id)
    job.partial_outputs = [*job.partial_outputs, path]
    db.session.commit()


def release_output(job_id: int, path: str) -> None:
    """The path is a catalogued result now: no later failure may delete it (commit with the catalog row)."""
    job = db.session.get(Job, job_id)
    job.partial_outputs = [p for p in job.partial_outputs if p != path]


def remove_partial_outputs(job: Job) -> list[str]:
    """Delete what the attempt left half-written (and void its uncatalogued tape files); returns the paths
    that existed."""
    void_unrecorded(job.id)
    drop_unfinished(job.id)  # the catalog rows of an archive it never recorded
    removed = []
    for path in job.partial_outputs or []:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove partial output %r of job %s: %s", path, job.id, exc)
    job.partial_outputs = []
    return removed


def finish(job_id: int, status: str, *, error_class: str | None = None, message: str | None = None,
           template: str | None = None, values: dict | None = None) -> None:
    """End a job. On success its outputs are results; on any other ending they are deleted here.

    ``message`` is English; ``template`` and ``values`` (errors.py) let the card translate it.
    Open stages stay as they are: stage_state shows them failed for bad endings. A job that was already
    ended (its time limit, by the worker's watchdog) keeps that ending; what it registered since is removed.
    """
    job = db.session.get(Job, job_id, with_for_update=True)  # against a cancel arriving right now
    if job.status in FINAL_STATUSES:
        remove_partial_outputs(job)
    elif status in (SUCCEEDED, WARNING) and job.cancel_requested:
        # The cancel was accepted after the job's last checkpoint: it is honoured, not ignored. What the job
        # catalogued stays (as for a failure), but restore offers no cancelled backup.
        append_log(job.id, "INFO", "cancelled by the operator after its last write")
        close(job, CANCELLED, "JobCancelled", JobCancelled.message, utcnow())
        job.error_template = JobCancelled.message
    else:
        close(job, status, error_class, message, utcnow())
        job.error_template, job.error_values = template, values
    db.session.commit()


def close(job: Job, status: str, error_class: str | None, message: str | None, now: datetime) -> list[str]:
    """Set a job's final state (no commit); returns the partial outputs it deleted."""
    assert status in FINAL_STATUSES, status
    removed: list[str] = []
    if status in (SUCCEEDED, WARNING):
        job.partial_outputs = []
        job.progress = 100
    else:
        removed = remove_partial_outputs(job)
    job.status = status
    job.finished_at = now
    job.error_class = error_class
    job.error_message = message
    job.error_template = job.error_values = None
    job.current_file = job.waiting_label = None  # an ended job waits for no tape
    _forget_job_secret(job)
    outbox.job_ended(job)  # an outbox row in this transaction; sent later by the scheduler's courier
    return removed


def _forget_job_secret(job: Job) -> None:
    """A password typed for one job (a restore or verify) lives exactly as long as the job."""
    secret_id = (job.params or {}).get("secret_id")
    if secret_id:
        db.session.execute(delete(Secret).where(Secret.id == secret_id))


def requeue_for_retry(job: Job, delay_s: float, reason: str) -> bool:
    """Put a failed attempt back in the queue; False when another queued job holds the slot."""
    remove_partial_outputs(job)
    job.status = QUEUED
    job.run_after = utcnow() + timedelta(seconds=delay_s)
    job.worker_id = job.waiting_label = None
    job.error_message = f"attempt {job.attempts} failed: {reason}; retrying in {delay_s:.0f} s"
    job.progress = job.bytes_done = job.files_done = 0
    db.session.execute(delete(JobStage).where(JobStage.job_id == job.id))
    append_log(job.id, "INFO", job.error_message)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def request_cancel(job_id: int, *, actor: str) -> str:
    """Cancel now if queued; flag a running job, which stops at its next checkpoint. The audit row goes in the
    same transaction.

    Cancel means cancel: the job row is locked, so either this commits first and the job cannot end any other
    way than ``cancelled`` (``finish`` honours a flag set after the job's last checkpoint), or the job ended
    first and the answer is "the job had already finished" (ConflictError), never a cancel accepted and then
    ignored.
    """
    job = db.session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise JobNotFound(job_id)
    if job.status in FINAL_STATUSES:
        status = job.status
        db.session.rollback()
        raise ConflictError(N_("job %(id)s had already finished (%(status)s)"), id=job_id, status=status)
    if job.status == QUEUED:
        close(job, CANCELLED, None, None, utcnow())
        append_log(job.id, "INFO", "cancelled before it started")
    else:
        job.cancel_requested = True
        append_log(job.id, "INFO", "cancel requested")
    status = job.status  # read before the commit expires it (a read after would reopen a transaction)
    audit.record(actor, "job.cancel", f"job:{job_id}", details={"status": status})
    db.session.commit()
    return status


def detach_project(project_id: int) -> None:
    """The project is being removed: its jobs stay as history, naming it by its snapshot ``project_name``."""
    db.session.execute(update(Job).where(Job.project_id == project_id).values(project_id=None))


def active_job_for_project(project_id: int) -> Job | None:
    return db.session.scalar(
        select(Job).where(
            and_(Job.project_id == project_id, Job.status.in_((QUEUED, RUNNING, WAITING_MEDIA)))
        ).limit(1)
    )
