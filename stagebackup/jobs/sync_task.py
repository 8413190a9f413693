"""Sync mode as a job: builds the pipeline's context from the project row and records the mirror's catalog."""

from __future__ import annotations

from collections.abc import Iterator

from flask import current_app

from ..catalog import MemberBatcher
from ..extensions import db
from ..models import Archive, Job, Project
from ..pipeline import sync as sync_pipeline
from ..pipeline.sync import SyncContext, SyncSettings
from ..pipeline.sync_plan import Member
from . import queue
from .progress import JobReporter


def _settings(project: Project, max_delete_ratio: float) -> SyncSettings:
    return SyncSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), dest_path=project.dest_path or "",
        strategy=project.sync_strategy or "overwrite", allow_mass_delete=bool(project.allow_mass_delete),
        max_delete_ratio=max_delete_ratio,
    )


def record_mirror(job_id: int, dest: str, members: Iterator[Member]) -> int:
    """One ``archives`` row (format "sync") and one ``archive_members`` row per mirror entry, one commit.

    Restore browses a sync job like an archive: member paths are relative to the destination.
    """
    archive = Archive(job_id=job_id, seq=1, format="sync", encrypted=False, location_kind="directory",
                      path=dest, size=0, sha256="", member_count=0)
    db.session.add(archive)
    db.session.flush()
    batcher = MemberBatcher(job_id, archive.id)
    total = 0
    add = batcher.add
    for path, kind, size, mtime, mode, link_target in members:
        add(path, kind, size=size, mtime=mtime, mode=mode, link_target=link_target)
        total += size
    batcher.flush()
    archive.size = archive.input_bytes = total
    archive.member_count = batcher.count
    archive_id = archive.id
    db.session.commit()
    return archive_id


def run_sync(job_id: int, reporter: JobReporter) -> None:
    config = current_app.config
    job = db.session.get(Job, job_id)
    settings = _settings(db.session.get(Project, job.project_id), float(config["SYNC_MAX_DELETE_RATIO"]))
    db.session.commit()  # never hold a transaction while working

    sync_pipeline.run_sync(SyncContext(
        job_id=job_id, settings=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
        skip_dirs=[config["DATA_DIR"], config["CACHE_DIR"]],
        register_partial=lambda path: queue.register_partial_output(job_id, path),
        record_catalog=lambda dest, members: record_mirror(job_id, dest, members),
    ))
