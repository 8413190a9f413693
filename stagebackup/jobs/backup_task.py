"""The archive backup as a job: builds the pipeline's context from the project row and records results."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from ..extensions import db
from ..models import Archive, Job, Project
from ..pipeline.archive import ArchiveResult
from ..pipeline.backup import BackupContext, ProjectSettings, run_archive_backup
from . import queue
from .progress import JobReporter


def _settings(project: Project) -> ProjectSettings:
    return ProjectSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), archive_format=project.archive_format,
        compression_level=project.compression_level, dest_kind=project.dest_kind,
        dest_path=project.dest_path,
    )


def run_backup(job_id: int, reporter: JobReporter) -> None:
    config = current_app.config
    job = db.session.get(Job, job_id)
    settings = _settings(db.session.get(Project, job.project_id))
    db.session.commit()  # never hold a transaction while working

    def record_archive(result: ArchiveResult, fmt: str, final_path: str) -> None:
        db.session.add(Archive(
            job_id=job_id, seq=1, format=fmt, encrypted=False, location_kind="directory",
            path=final_path, size=result.size, sha256=result.sha256, member_count=result.member_count,
        ))
        queue.release_output(job_id, final_path)  # same transaction: catalog and disk always agree
        db.session.commit()

    run_archive_backup(BackupContext(
        job_id=job_id, project=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
        skip_dirs=[config["DATA_DIR"], config["CACHE_DIR"]], threads=config["COMPRESS_THREADS"],
        register_partial=lambda path: queue.register_partial_output(job_id, path),
        record_archive=record_archive, started=datetime.now(),  # local time: names are read by people
    ))
