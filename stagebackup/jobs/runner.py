"""Run one claimed job to a final status. Every failure ends visibly, never as success."""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime

from flask import current_app

from ..errors import JobInterrupted, StageBackupError
from ..extensions import db
from ..models import FAILED, SUCCEEDED, WARNING, Archive, Job, Project
from ..pipeline.archive import ArchiveResult
from ..pipeline.backup import BackupContext, ProjectSettings, run_archive_backup
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


def _settings(project: Project) -> ProjectSettings:
    return ProjectSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), archive_format=project.archive_format,
        compression_level=project.compression_level, dest_kind=project.dest_kind,
        dest_path=project.dest_path,
    )


def run_job(job_id: int, stop_event: threading.Event) -> str:
    """Run a job this worker has claimed; returns the status it ended with."""
    config = current_app.config
    job = db.session.get(Job, job_id)
    reporter = JobReporter(job_id, flush_interval_s=config["PROGRESS_FLUSH_INTERVAL_S"], stop_event=stop_event)
    project = db.session.get(Project, job.project_id) if job.project_id else None
    if project is None:
        queue.finish(job_id, FAILED, error_class="ProjectNotFound", message="the project was removed")
        return FAILED
    settings = _settings(project)
    attempts, max_attempts = job.attempts, job.max_attempts
    db.session.commit()  # never hold a transaction while working

    def record_archive(result: ArchiveResult, fmt: str, final_path: str) -> None:
        db.session.add(Archive(
            job_id=job_id, seq=1, format=fmt, encrypted=False, location_kind="directory",
            path=final_path, size=result.size, sha256=result.sha256, member_count=result.member_count,
        ))
        queue.release_output(job_id, final_path)  # same transaction: catalog and disk always agree
        db.session.commit()

    ctx = BackupContext(
        job_id=job_id, project=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
        skip_dirs=[config["DATA_DIR"], config["CACHE_DIR"]], threads=config["COMPRESS_THREADS"],
        register_partial=lambda path: queue.register_partial_output(job_id, path),
        record_archive=record_archive, started=datetime.now(),  # local time: names are read by people
    )
    try:
        run_archive_backup(ctx)
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

    status = WARNING if reporter.error_count else SUCCEEDED
    reporter.log("INFO", "finished" if status == SUCCEEDED else f"finished with {reporter.error_count} error(s)")
    reporter.flush(force=True)
    job = db.session.get(Job, job_id)
    job.progress = 100
    message = None if status == SUCCEEDED else f"{reporter.error_count} file(s) could not be backed up"
    queue.finish(job_id, status, error_class=None, message=message)
    return status

