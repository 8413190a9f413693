"""Sync mode as a job: builds the pipeline's context from the project row and records the mirror's catalog."""

from __future__ import annotations

import contextlib
import os

from flask import current_app
from sqlalchemy import select

from .. import pathpolicy
from ..catalog_stream import UNFINISHED, discard_unfinished
from ..extensions import db
from ..models import SUCCEEDED, Archive, Job, Project
from ..pipeline import sync as sync_pipeline
from ..pipeline.sync import SyncContext, SyncSettings
from . import queue, state
from .mirror_catalog import NO_DIGEST, MirrorCatalog
from .progress import JobReporter


def _settings(project: Project, max_delete_ratio: float, allow_mass_delete: bool) -> SyncSettings:
    """``allow_mass_delete`` comes from the job, never the project: whoever confirms it does so for one run."""
    return SyncSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), dest_path=project.dest_path or "",
        strategy=project.sync_strategy or "overwrite", allow_mass_delete=allow_mass_delete,
        max_delete_ratio=max_delete_ratio, read_limit_bytes_s=project.read_limit_bytes_s,
    )


def previous_catalog(project_id: int, dest: str) -> Archive | None:
    """The latest successful run's catalog of this mirror, if it has a digest to compare with."""
    return db.session.scalar(
        select(Archive).join(Job, Job.id == Archive.job_id)
        .where(Job.project_id == project_id, Job.status == SUCCEEDED, Archive.format == "sync",
               Archive.path == dest, Archive.sha256.not_in((UNFINISHED, NO_DIGEST)))
        .order_by(Job.id.desc()).limit(1)
    )


def reuse_catalog(job_id: int, previous_id: int) -> None:
    """The mirror is unchanged: this run's archive row, and its catalog is the one ``previous_id`` refers to."""
    previous = db.session.get(Archive, previous_id)
    owner = db.session.get(Job, previous.job_id)
    db.session.add(Archive(job_id=job_id, seq=1, format="sync", encrypted=False, location_kind="directory",
                           path=previous.path, size=previous.size, input_bytes=previous.input_bytes,
                           sha256=previous.sha256, member_count=previous.member_count))
    state.link_catalog(job_id, owner.catalog_job_id or owner.id)
    db.session.commit()


def run_sync(job_id: int, reporter: JobReporter) -> None:
    config = current_app.config
    job = db.session.get(Job, job_id)
    settings = _settings(db.session.get(Project, job.project_id), float(config["SYNC_MAX_DELETE_RATIO"]),
                         (job.params or {}).get("allow_mass_delete") is True)
    policy = pathpolicy.current()
    pathpolicy.check_project_paths(settings.sources, settings.dest_path or None, policy, mirror=True)
    previous = previous_catalog(job.project_id, os.path.abspath(settings.dest_path)) if settings.dest_path else None
    previous_id, previous_digest = (previous.id, previous.sha256) if previous else (None, None)
    db.session.commit()  # never hold a transaction while working
    app = current_app._get_current_object()
    catalogs: list[MirrorCatalog] = []

    def stream_catalog(spool_path: str) -> MirrorCatalog:
        catalogs.append(MirrorCatalog(app, job_id, spool_path))
        return catalogs[-1]

    try:
        sync_pipeline.run_sync(SyncContext(
            job_id=job_id, settings=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
            skip_dirs=policy.skip_dirs(),
            register_partial=lambda path: queue.register_partial_output(job_id, path),
            stream_catalog=stream_catalog,
            previous_digest=previous_digest,
            reuse_catalog=lambda: reuse_catalog(job_id, previous_id),
        ))
    except BaseException:
        with contextlib.suppress(Exception):  # the catalog thread may be waiting for SQLite's write lock
            db.session.rollback()
            for catalog in catalogs:
                catalog.abort()
            discard_unfinished(job_id)
        raise
