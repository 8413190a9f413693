"""The archive backup as a job: builds the pipeline's context from the project row and records results."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from ..extensions import db
from ..models import Archive, Job, Project
from ..pipeline.archive import ArchiveResult
from ..pipeline.backup import BackupContext, ProjectSettings, run_archive_backup
from ..pipeline.destination import Placement
from . import queue
from .progress import JobReporter


def _settings(project: Project) -> ProjectSettings:
    return ProjectSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), archive_format=project.archive_format,
        compression_level=project.compression_level, dest_kind=project.dest_kind,
        dest_path=project.dest_path, dest_drive=project.dest_drive,
    )


def run_backup(job_id: int, reporter: JobReporter) -> None:
    config = current_app.config
    job = db.session.get(Job, job_id)
    project = db.session.get(Project, job.project_id)
    settings = _settings(project)
    sink = None
    if project.dest_kind == "tape":  # hook for issue #5: the tape drive's ArchiveSink
        from ..tape.sink import TapeSink

        sink = TapeSink(current_app._get_current_object(), config, job_id=job_id, drive=project.dest_drive,
                        pool=project.dest_pool, reporter=reporter, verify=project.verify_after_write)
    db.session.commit()  # never hold a transaction while working

    def record_archive(result: ArchiveResult, fmt: str, final) -> None:
        if isinstance(final, Placement):  # on tape
            archive = Archive(
                job_id=job_id, seq=1, format=fmt, encrypted=False, location_kind=final.location_kind,
                path=final.path, name=final.details.get("name"), size=result.size, sha256=result.sha256,
                member_count=result.member_count,
            )
            db.session.add(archive)
            db.session.flush()
            from ..tape.sink import link_archive

            link_archive(final, archive.id)
            db.session.commit()
            return
        db.session.add(Archive(
            job_id=job_id, seq=1, format=fmt, encrypted=False, location_kind="directory",
            path=final, size=result.size, sha256=result.sha256, member_count=result.member_count,
        ))
        queue.release_output(job_id, final)  # same transaction: catalog and disk always agree
        db.session.commit()

    run_archive_backup(BackupContext(
        job_id=job_id, project=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
        skip_dirs=[config["DATA_DIR"], config["CACHE_DIR"]], threads=config["COMPRESS_THREADS"],
        register_partial=lambda path: queue.register_partial_output(job_id, path),
        record_archive=record_archive, started=datetime.now(),  # local time: names are read by people
        sink=sink,
    ))
