"""The archive backup as a job: builds the pipeline's context from the project row and records results.

``make_sink`` is the one place that picks where archives go; the tape drive's sink is added there.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from flask import current_app

from .. import keys, pathpolicy
from ..catalog import MemberBatcher
from ..catalog_stream import ArchiveCatalog, discard_unfinished
from ..errors import ValidationError
from ..extensions import db
from ..models import Archive, Job, Project
from ..pipeline.backup import ArchiveRecord, BackupContext, ProjectSettings, run_archive_backup
from ..pipeline.destination import ArchiveSink, DirectorySink
from ..tape.ledger import link_archive
from . import queue
from .progress import JobReporter


def _settings(project: Project) -> ProjectSettings:
    return ProjectSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), archive_format=project.archive_format,
        compression_level=project.compression_level, dest_kind=project.dest_kind,
        dest_path=project.dest_path, encrypted=bool(project.encrypted), group_max_bytes=project.group_max_bytes,
        dest_drive=project.dest_drive, dest_pool=project.dest_pool, verify_after_write=project.verify_after_write,
        catalog_copy_to_tape=project.catalog_copy_to_tape, read_limit_bytes_s=project.read_limit_bytes_s,
    )


def make_sink(settings: ProjectSettings, job_id: int, reporter) -> ArchiveSink:
    """Where this project's archives go. ``reporter`` is safe to use from the copy thread.

    The tape drive's sink is chosen here too (``settings.dest_kind == "tape"``: ``dest_drive``,
    ``dest_pool`` and ``verify_after_write`` are in ``settings``).
    """

    def register_partial(path: str) -> None:
        queue.register_partial_output(job_id, path)

    if settings.dest_kind == "directory" and settings.dest_path:
        return DirectorySink(settings.dest_path, reporter, register_partial)
    if settings.dest_kind == "tape" and settings.dest_drive:  # issue #5: the tape drive's sink
        from ..tape.sink import TapeSink

        return TapeSink(current_app._get_current_object(), current_app.config, job_id=job_id,
                        drive=settings.dest_drive, pool=settings.dest_pool, reporter=reporter,
                        verify=settings.verify_after_write, catalog_copy=settings.catalog_copy_to_tape)
    raise ValidationError(f"destination {settings.dest_kind!r} is not supported yet")


def record_archive(job_id: int, secret_id: int | None, record: ArchiveRecord) -> None:
    """The archive row, its members and the release of its file, in one transaction: the catalog and the
    destination always agree (a later failure never deletes a catalogued archive).

    With ``record.catalog`` the members were written while the archive was compressed, under its unfinished
    row (``catalog_stream``): this transaction fills the row in, which makes the archive a finished one."""
    result, placement = record.result, record.placement
    values = dict(
        job_id=job_id, seq=record.seq, format=record.fmt, encrypted=record.encrypted,
        location_kind=placement.location_kind, path=placement.path, size=result.size, sha256=result.sha256,
        member_count=result.member_count, input_bytes=result.input_bytes, name=record.name,
        secret_id=secret_id if record.encrypted else None, kdf_iterations=record.kdf_iterations,
    )
    if record.catalog is not None:
        archive = db.session.get(Archive, record.catalog.finish())
        for key, value in values.items():
            setattr(archive, key, value)
    else:
        archive = Archive(**values)
        db.session.add(archive)
        db.session.flush()
        batcher = MemberBatcher(job_id, archive.id)
        batcher.add_rows(record.members)
        batcher.flush()
    link_archive(placement.tape_file_ids, archive.id)  # a tape archive's pieces, in this same transaction
    if placement.path:
        queue.release_output(job_id, placement.path)
    db.session.commit()


def run_backup(job_id: int, reporter: JobReporter) -> None:
    config = current_app.config
    job = db.session.get(Job, job_id)
    project = db.session.get(Project, job.project_id)
    settings = _settings(project)
    policy = pathpolicy.current()
    pathpolicy.check_project_paths(settings.sources, settings.dest_path if settings.dest_kind == "directory" else None,
                                   policy, mirror=False)
    secret_id = project.secret_id if project.encrypted else None
    password = keys.reveal(secret_id) if secret_id is not None else None  # never logged, never shown
    db.session.commit()  # never hold a transaction while working
    app = current_app._get_current_object()

    catalogs: list[ArchiveCatalog] = []

    def stream_catalog(seq: int, name: str, members) -> ArchiveCatalog:
        catalogs.append(ArchiveCatalog(app, job_id, seq, settings.archive_format, name, members))
        return catalogs[-1]

    try:
        run_archive_backup(BackupContext(
            job_id=job_id, project=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
            skip_dirs=policy.skip_dirs(), threads=config["COMPRESS_THREADS"],
            register_partial=lambda path: queue.register_partial_output(job_id, path),
            record_archive=lambda record: record_archive(job_id, secret_id, record),
            started=datetime.now(),  # local time: names are read by people
            make_sink=lambda sink_reporter: make_sink(settings, job_id, sink_reporter),
            password=password, kdf_iterations=int(config["KDF_ITERATIONS"]),
            group_max_bytes=int(config["ARCHIVE_GROUP_MAX_BYTES"]),
            direct=bool(config["COMPRESS_DIRECTLY_TO_TAPE"]), stream_catalog=stream_catalog,
        ))
    except BaseException:
        # This attempt's unfinished catalog goes now, in short transactions (recovery would do it in one).
        with contextlib.suppress(Exception):
            db.session.rollback()  # the catalog threads may be waiting for SQLite's write lock
            for catalog in catalogs:
                catalog.abort()
                catalog.wait()
            discard_unfinished(job_id)
        raise
