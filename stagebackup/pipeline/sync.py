"""Sync mode: mirror the sources into a directory. scan → copy (同步) → finalize.

Like ``backup.py`` it knows nothing of the database: the task hands it the project's settings, a reporter
and callbacks (register a partial output; start writing the mirror's catalog, which the task does on a thread
of its own while the files are copied, and finish it once they are).

Layout: every source is mirrored to ``DEST/<basename of the source>`` (a file source becomes the file
``DEST/<name>``), whatever the number of sources, so adding a source never moves the others. Two sources
with the same basename are refused (``mirror_names``, also used when a project is validated). Entries at
the top of ``DEST`` that are not a source's name are not the mirror's and are never touched.

*overwrite* makes each ``DEST/<name>`` what the source is: new and changed files are copied, entries the
source no longer has are removed (one ``[SYNC] … removed`` line each); *incremental* copies new and
changed files and never removes anything. Changed means another size or mtime. Both keep mtimes (ns),
permissions, owners (when run as root), symlinks as links (dangling ones too), empty directories and
directory mtimes. Hard links are copied as separate files (as ``rsync -a`` without ``-H`` does). Files
the include/exclude rules leave out are never removed from the mirror (as rsync without
``--delete-excluded``), nor is anything under a source directory that could not be read.

Safety: a source that does not exist fails the job (``scan.walk`` raises); an empty source directory
whose mirror is not empty fails it too (an unmounted disk looks like that); and an overwrite run that would
remove more than ``max_delete_ratio`` of the mirror's files fails before it removes anything, unless this
run was confirmed (the job's ``allow_mass_delete`` parameter). All of this is decided from the plan, before the
first change.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import N_, DestinationError, StageBackupError, ValidationError, human_bytes
from ..paths import display
from .scan import DIR, Rules, walk
from .sync_apply import Applier, read_plan
from .sync_plan import CatalogSpool, ErrorWatch, Member, PlanCounts, Planner, Root, SourceEmpty, is_temp_name, member
from .sync_quick import unchanged_digest
from .throttle import describe, for_limit

STRATEGIES = ("overwrite", "incremental")


class MassDeleteRefused(StageBackupError):
    template = N_(
        "this mirror would remove %(files)s of the %(total)s files in %(dest)s (%(share)s, more than the limit of "
        "%(limit)s); nothing was removed. If that is intended, confirm it for one run: the button \"confirm mass "
        "delete and run\" on this job, or `flask jobs run %(project)s --allow-mass-delete` (or raise "
        "STAGEBACKUP_SYNC_MAX_DELETE_RATIO)"
    )
    params = ("files", "total", "dest", "share", "limit", "project")


@dataclass(frozen=True)
class SyncSettings:
    name: str
    sources: list[str]
    includes: list[str]
    excludes: list[str]
    dest_path: str
    strategy: str  # overwrite | incremental
    allow_mass_delete: bool
    max_delete_ratio: float
    read_limit_bytes_s: int | None = None  # the sources are read at most this fast (None: no limit)


class MirrorCatalogHandle(Protocol):
    def finish(self, dest: str, corrections: dict[bytes, Member | None]) -> object: ...


@dataclass
class SyncContext:
    job_id: int
    settings: SyncSettings
    reporter: object  # jobs.progress.JobReporter
    cache_dir: str
    skip_dirs: dict[str, str]  # folder -> why it is passed over
    register_partial: Callable[[str], None]
    # Starts writing the catalog the planner spooled (its path) while the copy runs; the handle's
    # ``finish(destination, corrections)`` records it (corrections: path -> the mirror's entry, or None).
    stream_catalog: Callable[[str], MirrorCatalogHandle]
    previous_digest: str | None = None  # the catalog digest the last successful run recorded for this mirror
    reuse_catalog: Callable[[], None] | None = None  # record this run with that catalog (the mirror is unchanged)


def mirror_names(sources: list[str]) -> list[bytes]:
    """The name each source gets under the destination; refuses two sources with the same name."""
    names: list[bytes] = []
    for source in sources:
        name = os.path.basename(os.fsencode(os.path.abspath(source)))
        if not name:
            raise ValidationError(N_("sync mode cannot mirror %(path)s: choose a directory below it"), field="sources",
                                  path=display(source))
        if name in names:
            raise ValidationError(
                N_("two sources would be mirrored to the same name '%(name)s': sync mode mirrors each source to "
                   "DEST/<its name>"),
                field="sources", name=display(name),
            )
        names.append(name)
    return names


def plan_roots(sources: list[str], dest_path: str) -> list[Root]:
    """Where each source is mirrored. Overlaps (real paths) were refused by the path policy when the job started."""
    dest = os.fsencode(os.path.realpath(dest_path))  # the mirror is changed through checked folders: real paths
    return [Root(index=index, src=os.fsencode(os.path.abspath(source)), real=os.fsencode(os.path.realpath(source)),
                 name=name, dest=dest + b"/" + name)
            for index, (source, name) in enumerate(zip(sources, mirror_names(sources), strict=True))]


def run_sync(ctx: SyncContext) -> None:
    settings, reporter = ctx.settings, ctx.reporter
    if settings.strategy not in STRATEGIES:
        raise ValidationError(N_("unknown sync strategy '%(value)s'"), value=settings.strategy)
    if not settings.dest_path:
        raise ValidationError(N_("sync mode needs a destination directory"))
    overwrite = settings.strategy == "overwrite"
    dest = os.fsencode(os.path.abspath(settings.dest_path))

    workdir = os.path.join(ctx.cache_dir, f"job-{ctx.job_id}")
    ctx.register_partial(workdir)  # the plan and catalog only: the mirror itself is never a partial output
    os.makedirs(workdir, exist_ok=True)
    plan_path, catalog_path = os.path.join(workdir, "plan"), os.path.join(workdir, "catalog")
    try:
        reporter.stage_started("scan")
        roots = plan_roots(settings.sources, settings.dest_path)
        if _unchanged(ctx, roots, dest, workdir):
            return
        counts = _plan(ctx, roots, overwrite, plan_path, catalog_path)
        reporter.set_totals(bytes_total=counts.copy_bytes, files_total=counts.file_copies,
                            folders_total=counts.folders_created)
        reporter.log("INFO", (
            f"scan finished: {counts.copies} to copy ({human_bytes(counts.copy_bytes)}), "
            f"{counts.deletions} to remove ({counts.deleted_files} files), {counts.dest_files} files in the mirror"
        ))
        if overwrite:
            _check_mass_delete(settings, counts, dest)
        reporter.stage_finished("scan")

        reporter.stage_started("copy")
        catalog = ctx.stream_catalog(catalog_path)  # its rows are written while the files are copied
        try:
            os.makedirs(dest, exist_ok=True)
        except OSError as exc:
            raise DestinationError(display(dest), exc.strerror) from exc
        applier = Applier(roots, dest, ctx.job_id, reporter, throttle=for_limit(settings.read_limit_bytes_s))
        if applier.throttle is not None:
            reporter.log("INFO", f"reading the sources at most {describe(applier.throttle.rate)} (the project's limit)")
        applier.clean_top_level_temps(is_temp_name)
        with open(plan_path, "rb") as plan:
            applier.apply(read_plan(plan))
        reporter.stage_finished("copy")

        reporter.stage_started("finalize")
        catalog.finish(os.fsdecode(dest), {path: _member_from_disk(dest, path) for path in applier.uncertain})
        reporter.stage_finished("finalize")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _unchanged(ctx: SyncContext, roots: list[Root], dest: bytes, workdir: str) -> bool:
    """The quick check (``sync_quick``): when the mirror is exactly its source and its catalog is the one the
    last run recorded, the run ends here, referring to that catalog. Otherwise the planner runs."""
    settings, reporter = ctx.settings, ctx.reporter
    if not ctx.previous_digest or ctx.reuse_catalog is None or settings.includes or settings.excludes:
        return False
    if unchanged_digest(roots, dest, workdir, reporter.checkpoint) != ctx.previous_digest:
        return False
    reporter.set_totals(bytes_total=0, files_total=0)
    reporter.log("INFO", "scan finished: the mirror is already the same as the source (nothing to copy or remove)")
    reporter.stage_finished("scan")
    reporter.stage_started("copy")
    reporter.stage_finished("copy")
    reporter.stage_started("finalize")
    ctx.reuse_catalog()
    reporter.log("INFO", "the mirror's catalog is unchanged since the last run: recorded by reference")
    reporter.stage_finished("finalize")
    return True


def _plan(ctx: SyncContext, roots: list[Root], overwrite: bool, plan_path: str, catalog_path: str) -> PlanCounts:
    settings, reporter = ctx.settings, ctx.reporter
    rules = Rules(settings.includes, settings.excludes)
    errors = ErrorWatch(reporter)
    counts = PlanCounts()
    with open(plan_path, "wb") as plan, open(catalog_path, "wb") as catalog_file:
        catalog = CatalogSpool(catalog_file)
        for root in roots:
            planner = Planner(root=root, rules=rules, overwrite=overwrite, plan=plan, catalog=catalog,
                              reporter=reporter, errors=errors, counts=counts)
            entries = walk([os.fsdecode(root.src)], rules, errors, ctx.skip_dirs)  # a missing source raises
            first = next(entries, None)  # None: include rules matched nothing in this source
            if first is not None:
                planner.run(_chain(first, entries))
            if overwrite and (first is None or first.kind == DIR) and planner.source_entries == 0:
                if planner.dest_root_entries or (first is None and _non_empty_dir(root.dest)):
                    raise SourceEmpty(display(root.src), display(root.dest))
        catalog.flush()
    return counts


def _non_empty_dir(path: bytes) -> bool:
    try:
        return bool(os.listdir(path))
    except OSError:
        return False


def _chain(first, rest):
    yield first
    yield from rest


def _check_mass_delete(settings: SyncSettings, counts: PlanCounts, dest: bytes) -> None:
    if not counts.deleted_files or settings.allow_mass_delete:
        return
    share = counts.deleted_files / max(counts.dest_files, 1)
    if share > settings.max_delete_ratio:
        raise MassDeleteRefused(
            files=counts.deleted_files, total=counts.dest_files, dest=display(dest), share=f"{share:.0%}",
            limit=f"{settings.max_delete_ratio:.0%}", project=settings.name,
        )


def _member_from_disk(dest: bytes, path: bytes) -> Member | None:
    full = dest + b"/" + path
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        kind, target = "dir", None
    elif stat.S_ISLNK(st.st_mode):
        kind, target = "symlink", os.readlink(full)
    elif stat.S_ISREG(st.st_mode):
        kind, target = "file", None
    else:
        return None
    return member(path, kind, st, target)
