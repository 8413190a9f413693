"""Run one claimed job to a final status. Every failure ends visibly, never as success."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import NamedTuple

from flask import current_app
from sqlalchemy.exc import InterfaceError, OperationalError

from ..errors import N_, JobInterrupted, ProjectRemoved, StageBackupError, UnknownJobKind, fill
from ..extensions import db
from ..models import FAILED, SUCCEEDED, WARNING, Job, Project
from ..restore.tasks import run_restore, run_verify
from ..retention import after_backup
from . import queue
from .backup_task import run_backup
from .progress import JobReporter
from .retry import retry_delay_s
from .sync_task import run_sync

log = logging.getLogger(__name__)
WARNING_SUMMARY = N_("%(count)s error(s): see [ERROR] lines in the log")
DATABASE_UNAVAILABLE = N_("the database was unavailable (%(reason)s): the job stopped; run it again")
TOO_MANY_ERRORS = N_("%(count)s error(s) in %(files)s file(s), more than %(ratio)s: see [ERROR] lines in the log")


class JobError(NamedTuple):
    """What a failed job stores: class, English message, and the template and values the card translates."""

    error_class: str
    message: str
    template: str | None = None
    values: dict | None = None


def describe(error: BaseException) -> JobError:
    """The error as a person can act on it, in English and as a translatable template."""
    if isinstance(error, StageBackupError):
        return JobError(type(error).__name__, str(error), error.template, _storable(error.values))
    if isinstance(error, JobInterrupted):
        return JobError(type(error).__name__, error.message, error.message)
    if isinstance(error, (OperationalError, InterfaceError)):  # locked, restarted, unreachable: not a bug
        values = {"reason": (str(error.orig).strip().splitlines() or ["?"])[0]}
        return JobError("DatabaseUnavailable", fill(DATABASE_UNAVAILABLE, values), DATABASE_UNAVAILABLE, values)
    if isinstance(error, OSError) and error.strerror:
        where = f" ({os.fsdecode(error.filename)})" if error.filename else ""
        return JobError(type(error).__name__, f"{error.strerror}{where}")
    return JobError(type(error).__name__, f"{type(error).__name__}: {error}")


def _storable(values: dict) -> dict:
    """Values as JSON keeps them: numbers and text as they are, anything else as its text."""
    return {k: v if v is None or isinstance(v, (str, int, float, bool)) else str(v) for k, v in values.items()}


Task = Callable[[int, JobReporter], None]

#: The function that runs each kind of job (a backup of a project in sync mode is a "sync" job).
TASKS: dict[str, Task] = {
    "backup": run_backup,
    "sync": run_sync,
    "restore": run_restore,
    "verify": run_verify,
}
#: Kinds that read their project's settings; restore and verify need only the backup's own rows.
NEEDS_PROJECT = frozenset({"backup", "sync"})


def task_kind(job: Job, project: Project | None) -> str:
    if job.kind == "backup" and project is not None and project.mode == "sync":
        return "sync"
    return job.kind


def _task_for(job: Job, project: Project | None) -> Task:
    """The function that runs this job; raises when there is none or its project is gone."""
    kind = task_kind(job, project)
    task = TASKS.get(kind)
    if task is None:
        raise UnknownJobKind(kind, ", ".join(sorted(TASKS)))
    if kind in NEEDS_PROJECT and project is None:
        raise ProjectRemoved(job.project_name)
    return task


def _end(job_id: int, status: str, error: BaseException) -> str:
    queue.finish(job_id, status, **describe(error)._asdict())
    return status


def run_job(job_id: int, stop_event: threading.Event) -> str:
    """Run a job this worker has claimed; returns the status it ended with."""
    config = current_app.config
    job = db.session.get(Job, job_id)
    reporter = JobReporter(job_id, flush_interval_s=config["PROGRESS_FLUSH_INTERVAL_S"], stop_event=stop_event)
    project = db.session.get(Project, job.project_id) if job.project_id else None
    try:
        task = _task_for(job, project)
    except StageBackupError as exc:
        return _end(job_id, FAILED, exc)
    attempts, max_attempts = job.attempts, job.max_attempts
    db.session.commit()  # never hold a transaction while working
    try:
        task(job_id, reporter)
    except JobInterrupted as stop:
        db.session.rollback()
        reporter.log("ERROR" if stop.status != "cancelled" else "INFO", stop.message)
        reporter.fail_open_stages(stop.message)
        return _end(job_id, stop.status, stop)
    except Exception as exc:  # noqa: BLE001 - every failure must end the job visibly
        db.session.rollback()
        message = describe(exc).message
        if not isinstance(exc, (StageBackupError, OperationalError, InterfaceError)):
            log.exception("job %s failed", job_id)
        reporter.log("ERROR", message)
        reporter.fail_open_stages(message)
        delay = retry_delay_s(exc, attempts, max_attempts)
        if delay is not None and queue.requeue_for_retry(db.session.get(Job, job_id), delay, message):
            return "queued"
        return _end(job_id, FAILED, exc)

    status, error_class, template, values = outcome(reporter.error_count, reporter.files_total,
                                                    float(current_app.config["ERROR_FAIL_RATIO"]))
    if status == SUCCEEDED and reporter.warnings:
        status, (template, values) = WARNING, reporter.warnings[0]
    message = fill(template, values) if template else None
    reporter.log("INFO" if status != FAILED else "ERROR",
                 "finished" if status == SUCCEEDED else f"finished with {reporter.error_count} error(s)"
                 if reporter.error_count else "finished with a warning")
    if status == FAILED:
        reporter.fail_open_stages(message)
    reporter.flush(force=True)
    queue.finish(job_id, status, error_class=error_class, message=message, template=template, values=values)
    if task is run_backup and status != FAILED:
        after_backup(job_id, queue.append_log)  # retention; never changes the job's ending
    return status


def outcome(errors: int, files: int, fail_ratio: float) -> tuple[str, str | None, str | None, dict | None]:
    """(status, error class, message template, values) of a job that ran to its end with ``errors`` [ERROR]
    lines: a backup that missed more than ``fail_ratio`` of its files is not one to rely on."""
    if not errors:
        return SUCCEEDED, None, None, None
    if errors > fail_ratio * max(files, 1):
        return FAILED, "TooManyErrors", TOO_MANY_ERRORS, {"count": errors, "files": files, "ratio": f"{fail_ratio:.0%}"}
    return WARNING, None, WARNING_SUMMARY, {"count": errors}
