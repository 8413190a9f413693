"""Verify ("test this backup"): read every archive back, check its SHA-256, and check that every catalog
member is in it with the same kind and size. Nothing is written (a tape file is pulled into the cache
and removed again).

Member lists are compared by a multiset digest (the sum of each member's SHA-256 modulo 2^256), so a
million-member archive needs no million-entry dict; only when the digests differ are the differences
listed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter

from sqlalchemy import select

from ..errors import N_, StageBackupError
from ..extensions import db
from ..models import ArchiveMember
from ..paths import display
from .archive_ref import ArchiveRef
from .plan import STREAM_ROWS, member_path
from .readers import iter_members
from .sources import archives_of, local_archive
from .tape_source import TapeAccess, announce_tapes

MAX_DIFF_LINES = 50
_MOD = 1 << 256


class VerifyFailed(StageBackupError):
    """A backup that does not read back as its catalog says."""

    template = None  # free-form: each raise site passes its N_ template


def _key(path: str, kind: str, size: int) -> tuple[str, str, int]:
    return path.strip("/"), kind, size if kind == "file" else 0


def _digest(keys) -> tuple[int, int]:
    total = count = 0
    for path, kind, size in keys:
        h = hashlib.sha256(os.fsencode(path) + b"\0" + kind.encode() + b"\0%d" % size).digest()
        total = (total + int.from_bytes(h, "big")) % _MOD
        count += 1
    return total, count


def _catalog_keys(job_id: int, archive_id: int):
    rows = db.session.execute(
        select(ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind, ArchiveMember.size)
        .where(ArchiveMember.job_id == job_id, ArchiveMember.archive_id == archive_id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    for parent, name, kind, size in rows:
        yield _key(member_path(parent, name), kind, size)


def _archive_keys(listed):
    for member in listed:
        yield _key(member.name, member.kind, member.size)


def verify_backup(source_job_id: int, passwords, reporter, *, cache_dir: str, register_partial,
                  tape: TapeAccess | None = None) -> None:
    reporter.stage_started("locate")
    archives = archives_of(source_job_id)
    if not archives:
        raise VerifyFailed(N_("verify failed: backup job %(job_id)s recorded no archives"), job_id=source_job_id)
    reporter.set_totals(bytes_total=sum(a.size for a in archives), files_total=sum(a.member_count for a in archives))
    db.session.commit()
    reporter.log("INFO", f"verifying {len(archives)} archive(s) of backup job #{source_job_id}")
    announce_tapes(reporter, source_job_id)
    reporter.stage_finished("locate")
    reporter.stage_started("read")
    problems = 0
    for ref in archives:
        if ref.format == "sync":
            problems += _verify_mirror(ref, source_job_id, reporter)
            continue
        with local_archive(ref, cache_dir=cache_dir, progress=reporter, register_partial=register_partial,
                           tape=tape) as path:
            reporter.log("INFO", f"archive {ref.label}: SHA-256 matches the catalog")
            reporter.advance(nbytes=ref.size)
            if "check" not in reporter.open_stages:
                reporter.stage_started("check")
            problems += _verify_members(ref, source_job_id, passwords.local(ref, path), reporter)
    reporter.stage_finished("read")
    if "check" in reporter.open_stages:
        reporter.stage_finished("check")
    if problems:
        raise VerifyFailed(N_("verify failed: %(count)s catalog difference(s): see [ERROR] lines in the log"),
                           count=problems)
    reporter.stage_started("finalize")
    reporter.log("INFO", f"all {len(archives)} archive(s) read back completely and match the catalog")
    reporter.stage_finished("finalize")


def _verify_members(ref: ArchiveRef, job_id: int, local, reporter) -> int:
    def counted(members):
        for member in members:
            reporter.advance(files=1)
            reporter.checkpoint()
            yield member

    archive_digest = _digest(_archive_keys(counted(iter_members(local))))
    catalog_digest = _digest(_catalog_keys(job_id, ref.id))
    db.session.commit()
    if catalog_digest[1] == 0:  # a backup from before member catalogs: the count is all we have
        if archive_digest[1] != ref.member_count:
            reporter.log("ERROR", f"archive {ref.label}: {archive_digest[1]} members, "
                                  f"the catalog recorded {ref.member_count}")
            return 1
        return 0
    if archive_digest == catalog_digest:
        reporter.log("INFO", f"archive {ref.label}: all {catalog_digest[1]} catalog members present")
        return 0
    # Differences: now it is worth holding both lists.
    in_archive = Counter(_archive_keys(iter_members(local)))
    in_catalog = Counter(_catalog_keys(job_id, ref.id))
    db.session.commit()
    missing = sorted((in_catalog - in_archive).elements())
    extra = sorted((in_archive - in_catalog).elements())
    for path, kind, size in missing[:MAX_DIFF_LINES]:
        reporter.log_path("ERROR", path, f"in the catalog ({kind}, {size} bytes) but not in archive {ref.label} "
                                         f"as such")
    for path, kind, size in extra[:MAX_DIFF_LINES]:
        reporter.log_path("ERROR", path, f"in archive {ref.label} ({kind}, {size} bytes) but not in the catalog")
    return len(missing) + len(extra)


def _verify_mirror(ref: ArchiveRef, job_id: int, reporter) -> int:
    """A sync mirror: every catalogued member exists with the same kind (and size for files)."""
    problems = 0
    for path, kind, size in _catalog_keys(job_id, ref.id):
        reporter.checkpoint()
        reporter.advance(files=1)
        full = os.path.join(ref.path or "", path)
        try:
            st = os.lstat(full)
        except OSError as exc:
            problems += 1
            if problems <= MAX_DIFF_LINES:
                reporter.log_path("ERROR", path, f"missing from the mirror ({exc.strerror})")
            continue
        actual = ("dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode)
                  else "file" if stat.S_ISREG(st.st_mode) else "special")
        if actual != kind or (kind == "file" and st.st_size != size):
            problems += 1
            if problems <= MAX_DIFF_LINES:
                reporter.log_path("ERROR", path, f"mirror has {actual} of {st.st_size} bytes, the catalog "
                                                 f"recorded {kind} of {size} bytes")
    db.session.commit()
    reporter.log("INFO", f"mirror {display(ref.path or '')}: checked against the catalog")
    return problems
