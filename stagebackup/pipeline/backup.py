"""The archive backup: scan → compress → copy → finalize, one archive per group.

It knows nothing of the database: the runner hands it a context with the project's settings, a
reporter, a sink factory and two callbacks (register a partial output, record a finished archive).

Groups overlap: archive k is copied (``sink.put`` on the copy thread) while archive k+1 is compressed,
so the ``compress`` and ``copy`` badges can both be blue. The cache holds at most the archive being copied
and the one being written; a staged archive is deleted as soon as its copy is recorded. With
``direct`` (COMPRESS_DIRECTLY_TO_TAPE) a tar.gz goes straight into ``sink.open_stream`` and the cache
holds only the manifests (7z needs a seekable file, so it is still staged).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..errors import N_, CacheFull, ValidationError, human_bytes
from ..paths import safe_filename
from . import groups as grouping
from .archive import (
    ArchiveResult,
    ArchiveSpec,
    ArchiveWriteError,
    FileOutput,
    HashingOutput,
    MemberSpool,
    sha256_of,
)
from .destination import ArchiveSink, Placement
from .overlap import Copier, CopyReporter, PipelineReporter
from .scan import DIR, FILE, SYMLINK, Entry, Rules, read_manifest, walk, write_manifest
from .sevenzip import write_7z
from .source import READ_CHUNK_BYTES, SourceFiles
from .tgz import write_tgz
from .throttle import describe, for_limit

MIN_PROGRESS_STEP_BYTES = 64 << 10
MIN_CACHE_BYTES = 1 << 20  # manifests and member lists of a group
FORMATS = ("tgz", "7z")


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
    encrypted: bool = False
    group_max_bytes: int | None = None  # None: the server's ARCHIVE_GROUP_MAX_BYTES
    dest_drive: str | None = None  # tape destinations
    dest_pool: str | None = None
    verify_after_write: bool = True
    catalog_copy_to_tape: bool = False
    read_limit_bytes_s: int | None = None  # the sources are read at most this fast (None: no limit)


@dataclass(frozen=True)
class ArchiveRecord:
    """One finished, placed archive, for the catalog (recorded with its members in one transaction)."""

    seq: int
    name: str
    fmt: str
    encrypted: bool
    kdf_iterations: int | None
    result: ArchiveResult
    placement: Placement
    members: MemberSpool  # iterate for catalog rows (archive.member_row)
    catalog: MemberCatalog | None = None  # its rows are written already: finish() it


class MemberCatalog(Protocol):
    """An archive's catalog rows being written while it is compressed (``catalog_stream.ArchiveCatalog``)."""

    def finish(self) -> int: ...

    def abort(self) -> None: ...


@dataclass
class BackupContext:
    job_id: int
    project: ProjectSettings
    reporter: object  # jobs.progress.JobReporter
    cache_dir: str
    skip_dirs: dict[str, str]  # folder -> why it is passed over
    threads: int
    register_partial: Callable[[str], None]
    record_archive: Callable[[ArchiveRecord], None]
    started: datetime  # server local time, for archive names
    make_sink: Callable[[object], ArchiveSink]  # given a reporter that is safe on the copy thread
    password: str | None = field(default=None, repr=False)
    kdf_iterations: int = 600_000
    group_max_bytes: int = 0  # 0: one archive per backup
    direct: bool = False  # COMPRESS_DIRECTLY_TO_TAPE
    # Given (seq, archive name, spool): a catalog that writes the spool's rows while the archive is compressed.
    # None: the rows are written by record_archive, after the archive.
    stream_catalog: Callable[[int, str, MemberSpool], MemberCatalog] | None = None


def archive_name(project_name: str, job_id: int, started: datetime, seq: int, extension: str) -> str:
    return f"{safe_filename(project_name)}_{started:%Y%m%d-%H%M%S}_job{job_id}_part{seq:03d}.{extension}"


def run_archive_backup(ctx: BackupContext) -> None:
    project = ctx.project
    if project.archive_format not in FORMATS:
        raise ValidationError(N_("unknown archive format '%(value)s'"), value=project.archive_format)
    if project.encrypted and not ctx.password:
        raise ValidationError(N_("the project is encrypted but has no password stored"))
    workdir = os.path.join(ctx.cache_dir, f"job-{ctx.job_id}")
    ctx.register_partial(workdir)
    os.makedirs(workdir, exist_ok=True)
    try:
        groups, total = _scan(ctx, workdir)
        _GroupPipeline(ctx, workdir, total).run(groups)
    except (ArchiveWriteError, OSError) as exc:  # the manifests and member lists live in the cache too
        if exc.errno == errno.ENOSPC:
            shutil.rmtree(workdir, ignore_errors=True)
            raise CacheFull(path=ctx.cache_dir, needed=human_bytes(MIN_CACHE_BYTES),
                            available=human_bytes(_available(ctx.cache_dir))) from exc
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _counted(entries: Iterable[Entry], kinds: Counter[str]) -> Iterator[Entry]:
    for entry in entries:
        kinds[entry.kind] += 1
        yield entry


def _scan(ctx: BackupContext, workdir: str) -> tuple[list[grouping.Group], int]:
    project, reporter = ctx.project, ctx.reporter
    reporter.stage_started("scan")
    manifest = os.path.join(workdir, "manifest")
    rules = Rules(project.includes, project.excludes)
    entries = _checkpointed(walk(project.sources, rules, reporter, ctx.skip_dirs), reporter)
    kinds: Counter[str] = Counter()
    with open(manifest, "wb") as out:
        count, total = write_manifest(_counted(entries, kinds), out)
    # The job's file count is regular files: folders (repeated in each archive of a split) and links are not.
    reporter.set_totals(bytes_total=total, files_total=kinds[FILE], folders_total=kinds[DIR])
    max_bytes = ctx.group_max_bytes if project.group_max_bytes is None else project.group_max_bytes
    if not max_bytes or total <= max_bytes:
        groups = [grouping.Group(1, manifest, count, total)]  # one archive: no second pass over the list
    else:
        with open(manifest, "rb") as fh:
            groups = grouping.split(read_manifest(fh), max_bytes, workdir)
        os.unlink(manifest)
    reporter.log("INFO", f"scan finished: {kinds[FILE]} file(s), {kinds[DIR]} folder(s), {kinds[SYMLINK]} link(s), "
                         f"{human_bytes(total)}, {len(groups)} archive(s)")
    reporter.stage_finished("scan")
    return groups, total


class _GroupPipeline:
    def __init__(self, ctx: BackupContext, workdir: str, total_bytes: int):
        self.ctx, self.workdir = ctx, workdir
        project = ctx.project
        self.spec = ArchiveSpec(
            fmt=project.archive_format, level=project.compression_level, threads=ctx.threads,
            password=ctx.password if project.encrypted else None,
            kdf_iterations=ctx.kdf_iterations if project.encrypted and project.archive_format == "tgz" else None,
        )
        # Progress reaches the page at least every 1 % of the input.
        self.step = max(MIN_PROGRESS_STEP_BYTES, min(READ_CHUNK_BYTES, total_bytes // 100))
        self.copy_reporter = CopyReporter(ctx.reporter)
        self.reporter = PipelineReporter(ctx.reporter, self.copy_reporter)
        self.copy_started = False
        self.archives = 0
        self.total_bytes = total_bytes
        self.catalogs: dict[int, MemberCatalog] = {}  # seq: written while compressed, until recorded
        self.throttle = for_limit(project.read_limit_bytes_s)  # one bucket for every archive of the job

    def run(self, groups: list[grouping.Group]) -> None:
        ctx, reporter = self.ctx, self.reporter
        sink = ctx.make_sink(self.copy_reporter)
        if hasattr(sink, "plan"):
            # A tape sink mounts its tape here, before anything is compressed: its badge (写入磁带) is the
            # one that turns blue, yellow while it waits for a tape, or red when the tape is refused.
            self._start_copy_stage()
            reporter.record_plan(sink.plan(self.total_bytes))
        copier = Copier(sink, self.copy_reporter)
        self.reporter.copier = copier
        direct = ctx.direct and self.spec.fmt == "tgz"
        if ctx.direct and not direct:
            reporter.log("INFO", "7z needs a seekable file: its archives are staged in the cache, then copied")
        pending = None
        if self.throttle is not None:
            reporter.log("INFO", f"reading the sources at most {describe(self.throttle.rate)} (the project's limit)")
        try:
            reporter.stage_started("compress")
            for group in groups:
                last = group.seq == len(groups)
                reporter.checkpoint()
                name = archive_name(ctx.project.name, ctx.job_id, ctx.started, group.seq, self.spec.extension)
                members = self._members(group.seq, name)
                if direct:
                    self._start_copy_stage()
                    result, placement = self._compress_direct(group, name, members, sink)
                    if last:
                        reporter.stage_finished("compress")
                    self._record(group, name, members, result, placement)
                    continue
                staged = os.path.join(self.workdir, name)
                _check_free_space(ctx.cache_dir, group.input_bytes)
                try:
                    result = self._compress_staged(group, staged, members)
                except (ArchiveWriteError, OSError) as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    with contextlib.suppress(OSError):
                        os.unlink(staged)  # free the space before measuring what is available
                    raise CacheFull(path=ctx.cache_dir, needed=human_bytes(group.input_bytes),
                                    available=human_bytes(_available(ctx.cache_dir))) from exc
                if last:
                    reporter.stage_finished("compress")
                if pending is not None:
                    self._finish_copy(copier, *pending)
                self._start_copy_stage()
                sink.prepare(name, group.seq)
                copier.start(staged, name, result.sha256, group.seq)
                pending = (group, name, members, result, staged)
            if pending is not None:
                self._finish_copy(copier, *pending)
            reporter.stage_finished("copy")
            reporter.stage_started("finalize")
            sink.close(True)
            reporter.log("INFO", f"{self.archives} archive(s) written")
            reporter.stage_finished("finalize")
        except BaseException:
            copier.abort()
            for catalog in self.catalogs.values():
                catalog.abort()
            with contextlib.suppress(Exception):
                sink.close(False)
            raise

    def _members(self, seq: int, name: str) -> MemberSpool:
        members = MemberSpool(os.path.join(self.workdir, f"members-{seq:03d}"))
        if self.ctx.stream_catalog is not None:
            self.catalogs[seq] = self.ctx.stream_catalog(seq, name, members)
        return members

    def _start_copy_stage(self) -> None:
        if not self.copy_started:
            self.copy_started = True
            self.reporter.stage_started("copy")

    def _write(self, group: grouping.Group, out, members: MemberSpool):
        with group.read() as entries:
            return write_tgz(entries, out, self.spec, reporter=self.reporter, members=members, step=self.step,
                             throttle=self.throttle, files=SourceFiles(self.ctx.project.sources))

    def _compress_staged(self, group: grouping.Group, staged: str, members: MemberSpool) -> ArchiveResult:
        if self.spec.fmt == "7z":
            with group.read() as entries:
                stats = write_7z(entries, staged, self.spec, reporter=self.reporter, members=members, step=self.step,
                                 throttle=self.throttle, files=SourceFiles(self.ctx.project.sources))
            size, sha256 = sha256_of(staged)
        else:
            output = FileOutput(staged)
            try:
                hashing = HashingOutput(output)
                stats = self._write(group, hashing, members)
                output.close(sync=True)
            finally:
                output.close(sync=False)
            size, sha256 = hashing.size, hashing.sha256.hexdigest()
        self.reporter.log("INFO", f"archive {os.path.basename(staged)}: {human_bytes(size)}, sha256 {sha256}")
        return ArchiveResult(size, sha256, stats.member_count, stats.input_bytes)

    def _compress_direct(self, group, name, members, sink) -> tuple[ArchiveResult, Placement]:
        stream = sink.open_stream(name, group.seq)
        try:
            hashing = HashingOutput(stream)
            stats = self._write(group, hashing, members)
            sha256 = hashing.sha256.hexdigest()
            placement = stream.commit(sha256)
        except BaseException:
            stream.abort()
            raise
        self.reporter.log("INFO", f"archive {name}: {human_bytes(hashing.size)}, sha256 {sha256}")
        return ArchiveResult(hashing.size, sha256, stats.member_count, stats.input_bytes), placement

    def _finish_copy(self, copier: Copier, group, name, members, result, staged) -> None:
        placement = copier.wait(self.ctx.reporter)
        os.unlink(staged)  # the cache never holds more than the archive being copied and the next one
        self._record(group, name, members, result, placement)

    def _record(self, group, name, members: MemberSpool, result: ArchiveResult, placement: Placement) -> None:
        where = placement.path or placement.details.get("where") or placement.location_kind  # words, not a dict
        self.reporter.log("INFO", f"archive {group.seq} written to {where}")
        self.ctx.record_archive(ArchiveRecord(
            seq=group.seq, name=name, fmt=self.spec.fmt, encrypted=self.spec.encrypted,
            kdf_iterations=self.spec.kdf_iterations, result=result, placement=placement, members=members,
            catalog=self.catalogs.pop(group.seq, None),
        ))
        members.discard()
        self.archives += 1


def _checkpointed(entries, reporter):
    """The scan's entries, with a checkpoint (cancel, shutdown, progress) every 256 of them: a stat apiece."""
    checkpoint = reporter.checkpoint
    for seen, entry in enumerate(entries):
        if not seen & 0xFF:
            checkpoint()
        yield entry


def _available(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _check_free_space(cache_dir: str, group_bytes: int) -> None:
    """Refuse to start a group when the cache cannot hold even a well-compressed archive of it.

    The archive's size is unknown before it is written; a quarter of the input is the least we
    insist on, and a full disk mid-way is still caught (ENOSPC → CacheFull) and cleaned up.
    """
    needed = group_bytes // 4 + MIN_CACHE_BYTES
    available = _available(cache_dir)
    if available < needed:
        raise CacheFull(path=cache_dir, needed=human_bytes(needed), available=human_bytes(available))
