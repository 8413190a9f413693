"""Restore and verify jobs, as the runner calls them: ``run_restore`` and ``run_verify``.

Restore: ``locate`` (catalog → the archives to read, totals) → ``read`` (each archive's SHA-256 checked,
tape files pulled into the cache) → ``extract`` (SafeExtractor) → ``finalize`` (folder times, summary).
For a directory destination every archive is checked before the first member is written, so a damaged
backup restores nothing. A password typed for the job is deleted when it ends, whatever the outcome.
"""

from __future__ import annotations

import contextlib
import os

from flask import current_app
from sqlalchemy import delete

from .. import keys, pathpolicy
from ..catalog import catalog_job
from ..errors import N_, StageBackupError
from ..extensions import db
from ..jobs import queue
from ..models import Job, Secret
from ..paths import display
from .archive_ref import ArchiveRef
from .extract import SafeExtractor
from .mirror import restore_mirror
from .plan import chosen_paths, plan_restore
from .readers import LocalArchive, extract_archive
from .rebase import Rebased, rebase_names
from .selection import Selection
from .service import resolve_target
from .sizes import MemberSizes
from .sources import archives_of, local_archive
from .tape_source import TapeAccess, announce_tapes
from .verify import verify_backup

MAX_SKIP_LINES = 1000  # beyond this, skipped members are counted, not listed


class NothingToRestore(StageBackupError):
    template = N_("no member of backup job %(job_id)s matches %(patterns)s")
    params = ("job_id", "patterns")


@contextlib.contextmanager
def job_context(job_id: int):
    """(params, the job whose catalog describes the source backup); the typed password's secret row goes as
    soon as the work ends."""
    job = db.session.get(Job, job_id)
    params, source_job_id = dict(job.params or {}), catalog_job(job.source_job_id)
    params["_drive"] = job.drive  # the drive an archive on tape is read from
    db.session.commit()
    try:
        yield params, source_job_id
    finally:
        secret_id = params.get("secret_id")
        if secret_id:
            db.session.rollback()
            db.session.execute(delete(Secret).where(Secret.id == secret_id))
            db.session.commit()


class Passwords:
    """The password of each archive: the one typed for this job, else the project's stored key."""

    def __init__(self, typed_secret_id: int | None):
        self._typed = keys.reveal(typed_secret_id) if typed_secret_id else None
        self._stored: dict[int, str] = {}
        self.iterations_default = int(current_app.config["KDF_ITERATIONS"])

    def local(self, ref: ArchiveRef, path: str) -> LocalArchive:
        if not ref.encrypted:
            return LocalArchive(path, ref.format)
        password = self._typed
        if password is None:
            if ref.secret_id is None:
                raise StageBackupError(N_("archive %(label)s is encrypted and no password is stored: type it"),
                                       label=ref.label)
            if ref.secret_id not in self._stored:
                self._stored[ref.secret_id] = keys.reveal(ref.secret_id)
                db.session.commit()
            password = self._stored[ref.secret_id]
        return LocalArchive(path, ref.format, password, ref.kdf_iterations or self.iterations_default)


def open_target(path: str) -> str | None:
    """Create the target and ask the path policy again, on the real path (a link may have appeared).
    Returns the topmost folder this created (None: the target existed), so a failed restore can remove it."""
    created, probe = None, path
    while not os.path.lexists(probe):
        created, probe = probe, os.path.dirname(probe)
    os.makedirs(path, exist_ok=True)
    pathpolicy.check_restore_target(path, pathpolicy.current())
    return created


def remove_empty_tree(top: str) -> bool:
    """Remove ``top`` and the folders under it if none holds anything but folders; whether it is gone."""
    for folder, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):  # not empty: a file is there, and stays
            os.rmdir(folder)
    return not os.path.lexists(top)


def _report_failure(extractor: SafeExtractor | None, created: str | None, reporter) -> None:
    """What a failed restore leaves: nothing (folders it created and left empty are removed), or a list."""
    if extractor is not None and extractor.written_count:
        shown = ", ".join(display(path) for path in extractor.written())
        reporter.log("INFO", f"the restore stopped after writing {extractor.written_count} item(s); the first: {shown}")
        return
    if extractor is not None:
        extractor.remove_created_folders()
    if created is not None and remove_empty_tree(created):
        reporter.log("INFO", f"nothing was written: removed the empty target folder {display(created)}")


def run_restore(job_id: int, reporter) -> None:
    with job_context(job_id) as (params, source_job_id):
        _restore(job_id, params, source_job_id, reporter)


def _restore(job_id: int, params: dict, source_job_id: int, reporter) -> None:
    reporter.stage_started("locate")
    target = resolve_target(params["target"])
    selection = Selection(params.get("paths") or [])
    conflict = params.get("conflict", "skip")
    plan = plan_restore(source_job_id, archives_of(source_job_id), selection)
    if not plan.archives:
        raise NothingToRestore(source_job_id, ", ".join(map(display, selection.patterns)))
    passwords = Passwords(params.get("secret_id"))
    db.session.commit()  # never hold a transaction (SQLite's write lock) while reading archives
    announce_tapes(reporter, source_job_id, [a.id for a in plan.archives])
    reporter.set_totals(bytes_total=plan.bytes_total, files_total=plan.files_total, folders_total=plan.folders_total)
    what = "everything" if selection.everything else f"{len(selection.patterns)} path(s)"
    reporter.log("INFO", f"restoring {what} of backup job #{source_job_id} from {len(plan.archives)} archive(s) "
                         f"to {display(target)} (existing files: {conflict})")
    created = open_target(target)
    reporter.stage_finished("locate")
    extractor = None
    try:
        original = params.get("original")  # back where it was: names relative to their common folder
        extractor = _extractor(target, conflict, params, reporter,
                               linked=plan.linked if original is None else rebase_names(plan.linked, original))
        if original is not None:
            extractor = Rebased(extractor, original)
        _restore_archives(job_id, plan, source_job_id, extractor, selection, passwords,
                          tape=TapeAccess(params.get("_drive"), job_id), reporter=reporter)
    except BaseException:
        _report_failure(extractor, created, reporter)
        raise
    finally:
        if extractor is not None:
            extractor.close()
    _report_stats(extractor, reporter)


def _extractor(target: str, conflict: str, params: dict, reporter, *, linked) -> SafeExtractor:
    skipped = 0

    def on_skipped(path: str, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        if skipped <= MAX_SKIP_LINES:
            reporter.log_path("SKIP", path, reason)
        elif skipped == MAX_SKIP_LINES + 1:
            reporter.log("SKIP", f"more than {MAX_SKIP_LINES} skipped member(s): the others are not listed")

    extractor = SafeExtractor(target, conflict, restore_owners=params.get("restore_owners") is True,
                              on_skipped=on_skipped, on_info=lambda path, note: reporter.log_path("INFO", path, note),
                              on_refused=lambda path, reason: reporter.log_path("ERROR", path, f"refused: {reason}"),
                              linked=linked)
    _log_owner_policy(extractor, params, reporter)
    return extractor


def _restore_archives(job_id: int, plan, source_job_id: int, extractor: SafeExtractor, selection, passwords, *,
                      tape: TapeAccess, reporter) -> None:
    cache_dir = current_app.config["CACHE_DIR"]
    partial = lambda path: queue.register_partial_output(job_id, path)  # noqa: E731
    reporter.stage_started("read")
    on_disk = [a for a in plan.archives if a.location_kind == "directory"]
    with contextlib.ExitStack() as stack:
        # Directory destinations: every archive's integrity first, so a damaged backup writes nothing.
        local = {}
        for ref in on_disk:
            reporter.advance(current=ref.path or ref.label)  # the card names the archive being read
            local[ref.id] = stack.enter_context(local_archive(ref, cache_dir=cache_dir, progress=reporter,
                                                              register_partial=partial))
            reporter.log("INFO", f"archive {ref.label}: SHA-256 verified")
        reporter.stage_started("extract")
        for ref in plan.archives:
            _extract_one(ref, local.get(ref.id), source_job_id, extractor, selection, passwords, plan,
                         reporter, cache_dir, partial, tape)
        reporter.stage_finished("read")
    extractor.finish()
    reporter.stage_finished("extract")


def _report_stats(extractor: SafeExtractor, reporter) -> None:
    reporter.stage_started("finalize")
    stats = extractor.stats
    reporter.log("INFO", (
        f"restored {stats.files} file(s), {stats.dirs} folder(s), {stats.symlinks + stats.hardlinks} link(s), "
        f"{stats.bytes} bytes; skipped {stats.existing_skipped} existing, renamed {stats.renamed}, "
        f"overwrote {stats.overwritten}; refused {len(stats.refused)} unsafe member(s)"
    ))
    if stats.privilege_cleared:
        reporter.log("INFO", f"cleared the set-uid/set-gid bits of {stats.privilege_cleared} file(s): their owners "
                             "were not restored")
    reporter.stage_finished("finalize")


def _log_owner_policy(extractor: SafeExtractor, params: dict, reporter) -> None:
    if extractor.restore_owners:
        reporter.log("INFO", "owners are restored (by name, then by id)")
    elif params.get("restore_owners") is True:
        reporter.log("INFO", "owners are not restored: the worker does not run as root")


def _extract_one(ref: ArchiveRef, path: str | None, source_job_id: int, extractor, selection, passwords,
                 plan, reporter, cache_dir, partial, tape: TapeAccess) -> None:
    if ref.format == "sync":
        restore_mirror(ref, source_job_id, extractor, selection, reporter)
        return
    size_of = None
    if plan.catalogued:
        size_of = MemberSizes(source_job_id, ref.id, lambda p: selection(p) or p in plan.link_sources,
                              chosen_paths(selection, tuple(plan.link_sources)),
                              plan.files_total + len(plan.link_sources)).limit
    if path is not None:
        extract_archive(passwords.local(ref, path), extractor, selection, reporter, link_sources=plan.link_sources,
                        size_of=size_of)
        return
    reporter.advance(current=ref.label)  # the archive on tape being read, until its first member
    with local_archive(ref, cache_dir=cache_dir, progress=reporter, register_partial=partial, tape=tape) as pulled:
        reporter.log("INFO", f"archive {ref.label}: read from tape, SHA-256 verified")
        extract_archive(passwords.local(ref, pulled), extractor, selection, reporter,
                        link_sources=plan.link_sources, size_of=size_of)


def run_verify(job_id: int, reporter) -> None:
    with job_context(job_id) as (params, source_job_id):
        verify_backup(source_job_id, Passwords(params.get("secret_id")), reporter,
                      cache_dir=current_app.config["CACHE_DIR"], tape=TapeAccess(params.get("_drive"), job_id),
                      register_partial=lambda path: queue.register_partial_output(job_id, path))
