"""The archive backup: scan → compress → copy → finalize.

It knows nothing of the database: the runner hands it a context with the project's settings, a
reporter and two callbacks (register a partial output, record a finished archive).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..errors import CacheFull, ValidationError, human_bytes
from ..paths import safe_filename
from .archive import ArchiveResult, ArchiveWriteError, write_tgz
from .destination import copy_to_directory
from .scan import Rules, read_manifest, walk, write_manifest


@dataclass(frozen=True)
class ProjectSettings:
    name: str
    sources: list[str]
    includes: list[str]
    excludes: list[str]
    archive_format: str
    compression_level: int
    dest_kind: str
    dest_path: str | None
    dest_drive: str | None = None


@dataclass
class BackupContext:
    job_id: int
    project: ProjectSettings
    reporter: object  # jobs.progress.JobReporter
    cache_dir: str
    skip_dirs: list[str]
    threads: int
    register_partial: Callable[[str], None]
    record_archive: Callable[[ArchiveResult, str, object], None]  # result, format, final path or Placement
    started: datetime  # server local time, for archive names
    sink: object | None = None  # an ArchiveSink (tape); None copies to dest_path


def archive_name(project_name: str, job_id: int, started: datetime, seq: int, fmt: str) -> str:
    ext = {"tgz": "tar.gz", "7z": "7z"}[fmt]
    return f"{safe_filename(project_name)}_{started:%Y%m%d-%H%M%S}_job{job_id}_part{seq:03d}.{ext}"


def run_archive_backup(ctx: BackupContext) -> None:
    project, reporter = ctx.project, ctx.reporter
    if project.archive_format != "tgz":
        raise ValidationError(f"archive format {project.archive_format!r} is not supported yet")
    if ctx.sink is None and (project.dest_kind != "directory" or not project.dest_path):
        raise ValidationError(f"destination {project.dest_kind!r} is not supported yet")

    workdir = os.path.join(ctx.cache_dir, f"job-{ctx.job_id}")
    ctx.register_partial(workdir)
    os.makedirs(workdir, exist_ok=True)
    try:
        reporter.stage_started("scan")
        manifest = os.path.join(workdir, "manifest")
        rules = Rules(project.includes, project.excludes)
        entries = _checkpointed(walk(project.sources, rules, reporter, ctx.skip_dirs), reporter)
        with open(manifest, "wb") as out:
            count, total = write_manifest(entries, out)
        reporter.set_totals(bytes_total=total, files_total=count)
        reporter.log("INFO", f"scan finished: {count} entries, {human_bytes(total)}")
        if hasattr(ctx.sink, "plan"):
            ctx.sink.plan(total)  # the tape plan: bytes, tapes needed, hours
        reporter.stage_finished("scan")

        reporter.stage_started("compress")
        name = archive_name(project.name, ctx.job_id, ctx.started, 1, project.archive_format)
        staged = os.path.join(workdir, name)
        _check_free_space(ctx.cache_dir, total)
        try:
            with open(manifest, "rb") as entries:
                result = write_tgz(
                    read_manifest(entries), staged, level=project.compression_level, threads=ctx.threads,
                    reporter=reporter,
                )
        except ArchiveWriteError as exc:
            if exc.errno == errno.ENOSPC:
                raise _cache_full(ctx.cache_dir, total) from exc
            raise
        reporter.log("INFO", f"archive {name}: {human_bytes(result.size)}, sha256 {result.sha256}")
        reporter.stage_finished("compress")

        reporter.stage_started("copy")
        if ctx.sink is not None:
            final = ctx.sink.put(staged, name, result.sha256, 1)
        else:
            final = copy_to_directory(
                staged, project.dest_path, name, expected_sha256=result.sha256, reporter=reporter,
                register_partial=ctx.register_partial,
            )
            reporter.log("INFO", f"written to {final}")
        reporter.stage_finished("copy")

        reporter.stage_started("finalize")
        ctx.record_archive(result, project.archive_format, final)
        if ctx.sink is not None:
            ctx.sink.close(True)  # a tape sink writes the session's index file here
            ctx.sink = None
        reporter.stage_finished("finalize")
    finally:
        if ctx.sink is not None:
            ctx.sink.close(False)
        shutil.rmtree(workdir, ignore_errors=True)


def _checkpointed(entries, reporter):
    for entry in entries:
        reporter.checkpoint()
        yield entry


def _check_free_space(cache_dir: str, source_bytes: int) -> None:
    """Refuse to start compressing when the cache cannot hold even a well-compressed archive.

    The archive's size is unknown before it is written; a quarter of the input is the least we
    insist on, and a full disk mid-way is still caught (ENOSPC → CacheFull) and cleaned up.
    """
    st = os.statvfs(cache_dir)
    available = st.f_bavail * st.f_frsize
    if available < source_bytes // 4:
        raise _cache_full(cache_dir, source_bytes, available)


def _cache_full(cache_dir: str, source_bytes: int, available: int | None = None) -> CacheFull:
    if available is None:
        st = os.statvfs(cache_dir)
        available = st.f_bavail * st.f_frsize
    return CacheFull(path=cache_dir, needed=human_bytes(source_bytes), available=human_bytes(available))
