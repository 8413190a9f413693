"""Run one claimed job to a final status. Every failure ends visibly, never as success."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from flask import current_app

from ..errors import JobInterrupted, StageBackupError
from ..extensions import db
from ..models import FAILED, SUCCEEDED, WARNING, Job, Project
from . import queue
from .progress import JobReporter
from .retry import retry_delay_s

log = logging.getLogger(__name__)


def describe(error: BaseException) -> tuple[str, str]:
    """(error class, message a person can act on)."""
    if isinstance(error, StageBackupError):
        return type(error).__name__, str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f" ({os.fsdecode(error.filename)})" if error.filename else ""
        return type(error).__name__, f"{error.strerror}{where}"
    return type(error).__name__, f"{type(error).__name__}: {error}"


Task = Callable[[int, JobReporter], None]


def _task_for(job: Job, project: Project | None) -> Task | None:
    """The function that runs this kind of job; None when its project is gone."""
    if job.kind == "restore":
        from ..restore.tasks import run_restore

        return run_restore
    if job.kind == "verify":
        from ..restore.tasks import run_verify

        return run_verify
    if project is None:
        return None
    if project.mode == "sync":
        from .sync_task import run_sync

        return run_sync
    from .backup_task import run_backup

    return run_backup


def run_job(job_id: int, stop_event: threading.Event) -> str:
    """Run a job this worker has claimed; returns the status it ended with."""
    config = current_app.config
    job = db.session.get(Job, job_id)
    reporter = JobReporter(job_id, flush_interval_s=config["PROGRESS_FLUSH_INTERVAL_S"], stop_event=stop_event)
    project = db.session.get(Project, job.project_id) if job.project_id else None
    task = _task_for(job, project)
    if task is None:
        queue.finish(job_id, FAILED, error_class="ProjectNotFound", message="the project was removed")
        return FAILED
    attempts, max_attempts = job.attempts, job.max_attempts
    db.session.commit()  # never hold a transaction while working
    try:
        task(job_id, reporter)
    except JobInterrupted as stop:
        db.session.rollback()
        reporter.log("ERROR" if stop.status != "cancelled" else "INFO", stop.message)
        reporter.fail_open_stages(stop.message)
        queue.finish(job_id, stop.status, error_class=type(stop).__name__, message=stop.message)
        return stop.status
    except Exception as exc:  # noqa: BLE001 - every failure must end the job visibly
        db.session.rollback()
        error_class, message = describe(exc)
        if not isinstance(exc, StageBackupError):
            log.exception("job %s failed", job_id)
        reporter.log("ERROR", message)
        reporter.fail_open_stages(message)
        delay = retry_delay_s(exc, attempts, max_attempts)
        if delay is not None and queue.requeue_for_retry(db.session.get(Job, job_id), delay, message):
            return "queued"
        queue.finish(job_id, FAILED, error_class=error_class, message=message)
        return FAILED

    status, error_class, message = outcome(reporter.error_count, reporter.files_total,
                                           float(config["ERROR_FAIL_RATIO"]))
    reporter.log("INFO" if status != FAILED else "ERROR",
                 "finished" if status == SUCCEEDED else f"finished with {reporter.error_count} error(s)")
    if status == FAILED:
        reporter.fail_open_stages(message)
    reporter.flush(force=True)
    queue.finish(job_id, status, error_class=error_class, message=message)
    return status


def outcome(errors: int, files: int, fail_ratio: float) -> tuple[str, str | None, str | None]:
    """(status, error class, message) of a job that ran to its end with ``errors`` [ERROR] lines."""
    if not errors:
        return SUCCEEDED, None, None
    if errors > fail_ratio * max(files, 1):
        return FAILED, "TooManyErrors", (
            f"{errors} error(s) in {files} file(s), more than {fail_ratio:.0%}: see [ERROR] lines in the log")
    return WARNING, None, f"{errors} error(s): see [ERROR] lines in the log"

