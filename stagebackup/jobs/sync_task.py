"""Sync mode as a job: builds the pipeline's context from the project row and records the mirror's catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import current_app
from sqlalchemy import select

from .. import pathpolicy
from ..catalog import MemberBatcher
from ..extensions import db
from ..models import SUCCEEDED, Archive, Job, Project
from ..pipeline import sync as sync_pipeline
from ..pipeline.listing import MirrorDigest, owners_kept
from ..pipeline.sync import SyncContext, SyncSettings
from ..pipeline.sync_plan import Member
from . import queue, state
from .progress import JobReporter


def _settings(project: Project, max_delete_ratio: float, allow_mass_delete: bool) -> SyncSettings:
    """``allow_mass_delete`` comes from the job, never the project: whoever confirms it does so for one run."""
    return SyncSettings(
        name=project.name, sources=list(project.sources), includes=list(project.includes or []),
        excludes=list(project.excludes or []), dest_path=project.dest_path or "",
        strategy=project.sync_strategy or "overwrite", allow_mass_delete=allow_mass_delete,
        max_delete_ratio=max_delete_ratio, read_limit_bytes_s=project.read_limit_bytes_s,
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
    # Recorded as the archive's sha256: the next run's quick check compares its listing's digest with it.
    digest = MirrorDigest(owners_kept(), current_app.config["CACHE_DIR"])
    total = 0
    add = batcher.add
    try:
        for member in members:
            path, kind, size, mtime_ns, mode, link_target, _uid, _gid = member
            add(path, kind, size=size, mtime=mtime_ns / 1e9, mode=mode, link_target=link_target)
            digest.add(member)
            total += size
        batcher.flush()
    except BaseException:
        digest.abandon()
        raise
    archive.size = archive.input_bytes = total
    archive.member_count = batcher.count
    archive.sha256 = digest.hexdigest()
    archive_id = archive.id
    db.session.commit()
    return archive_id


def previous_catalog(project_id: int, dest: str) -> Archive | None:
    """The latest successful run's catalog of this mirror, if it has a digest to compare with."""
    return db.session.scalar(
        select(Archive).join(Job, Job.id == Archive.job_id)
        .where(Job.project_id == project_id, Job.status == SUCCEEDED, Archive.format == "sync",
               Archive.path == dest, Archive.sha256 != "")
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

    sync_pipeline.run_sync(SyncContext(
        job_id=job_id, settings=settings, reporter=reporter, cache_dir=config["CACHE_DIR"],
        skip_dirs=policy.skip_dirs(),
        register_partial=lambda path: queue.register_partial_output(job_id, path),
        record_catalog=lambda dest, members: record_mirror(job_id, dest, members),
        previous_digest=previous_digest,
        reuse_catalog=lambda: reuse_catalog(job_id, previous_id),
    ))
