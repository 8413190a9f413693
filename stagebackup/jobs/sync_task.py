"""Sync mode as a job: builds the pipeline's context from the project row and records the mirror's catalog."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from flask import Flask, current_app
from sqlalchemy import delete, select, update

from .. import pathpolicy
from ..bulk import insert_rows
from ..catalog import MemberBatcher
from ..catalog_stream import UNFINISHED, ArchiveCatalog, discard_unfinished
from ..extensions import db
from ..models import SUCCEEDED, Archive, ArchiveMember, Job, Project
from ..pipeline import sync as sync_pipeline
from ..pipeline.archive import MemberSpool, member_row
from ..pipeline.listing import MirrorDigest, owners_kept
from ..pipeline.sync import SyncContext, SyncSettings
from ..pipeline.sync_plan import CatalogSpool, Member
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


NO_DIGEST = "-"  # a recorded mirror whose digest could not be made: never equal to a listing's, never unfinished


class _SpoolRows:
    """The planner's catalog spool, complete before the copy starts, read the way ``ArchiveCatalog`` follows
    an archive's spool: member rows in batches. The mirror's digest and size are made from the same rows."""

    def __init__(self, path: str, digest: MirrorDigest):
        self._fh = open(path, "rb")  # opened now: the job's work directory goes when the pipeline ends
        self.digest = digest
        self.count = self.total_bytes = 0

    def follow(self) -> Iterator[list[tuple]]:
        rows: list[tuple] = []
        with self._fh:
            for member in CatalogSpool.read(self._fh):
                path, kind, size, mtime_ns, mode, link_target, _uid, _gid = member
                rows.append(member_row(path, kind, size, mtime_ns / 1e9, mode, link_target))
                self.digest.add(member)
                self.total_bytes += size
                if len(rows) >= MemberSpool.FOLLOW_ROWS:
                    self.count += len(rows)
                    yield rows
                    rows = []
        self.count += len(rows)
        yield rows

    def close(self) -> None:
        """Nothing to wait for: the spool was complete before the thread started."""

    def discard(self) -> None:
        """``ArchiveCatalog.abort`` stops the thread after its current batch."""


class MirrorCatalog:
    """One sync run's catalog (an ``archives`` row of format "sync" and one ``archive_members`` row per mirror
    entry), written by ``ArchiveCatalog``'s thread while the files are copied, so that a million-file mirror
    does not spend a finalize stage inserting rows (docs/performance.md, "First mirror"). Until ``finish`` the
    row is unfinished, as a tar.gz archive's is while it is compressed: invisible, and discarded if the run
    fails. Restore browses a sync job like an archive: member paths are relative to the destination."""

    def __init__(self, app: Flask, job_id: int, spool_path: str):
        self.job_id = job_id
        # Recorded as the archive's sha256: the next run's quick check compares its listing's digest with it.
        self.rows = _SpoolRows(spool_path, MirrorDigest(owners_kept(), app.config["CACHE_DIR"]))
        self.writer = ArchiveCatalog(app, job_id, 1, "sync", None, self.rows)

    def finish(self, dest: str, corrections: dict[bytes, Member | None]) -> int:
        """Wait for the rows, put the mirror's own state in place of the ``corrections`` (entries whose change
        failed: what the disk has, or nothing), and record the archive. One short transaction."""
        archive_id = self.writer.finish()
        count, total = self.rows.count, self.rows.total_bytes
        if corrections:
            self.rows.digest.abandon()  # the spooled rows are not all the mirror's: the next run plans in full
            digest = NO_DIGEST
        else:
            digest = self.rows.digest.hexdigest() or NO_DIGEST
        for path, found in corrections.items():
            removed = self._remove_row(archive_id, path)
            if removed is None:
                continue  # never planned into the catalog (a removal that failed): not the mirror's
            count, total = count - 1, total - removed
            if found is not None:
                _path, kind, size, mtime_ns, mode, link_target, _uid, _gid = found
                insert_rows(ArchiveMember.__table__, MemberBatcher.COLUMNS, [
                    (self.job_id, archive_id, *member_row(path, kind, size, mtime_ns / 1e9, mode, link_target))])
                count, total = count + 1, total + size
        db.session.execute(update(Archive).where(Archive.id == archive_id).values(
            path=dest, size=total, input_bytes=total, member_count=count, sha256=digest))
        db.session.commit()
        return archive_id

    def _remove_row(self, archive_id: int, path: bytes) -> int | None:
        """Delete the spooled row of ``path``; its size, or None if there was none."""
        parent, name = member_row(path, "file")[:2]
        found = db.session.execute(select(ArchiveMember.id, ArchiveMember.size).where(
            ArchiveMember.job_id == self.job_id, ArchiveMember.archive_id == archive_id,
            ArchiveMember.parent == parent, ArchiveMember.name == name)).first()
        if found is None:
            return None
        db.session.execute(delete(ArchiveMember).where(ArchiveMember.id == found.id))
        return found.size

    def abort(self) -> None:
        """The run failed: stop the thread, then (the caller's transaction released) ``discard_unfinished``."""
        self.writer.abort()
        self.writer.wait()
        self.rows.digest.abandon()


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
