"""Where a backup's archives are, and getting each one onto local disk with its integrity checked.

A directory destination's archive is read in place; an archive on tape is pulled into the cache (seed
001 §2.2) through the tape module's reader, hashing while it copies. Either way the SHA-256 recorded in
the catalog is compared before a single member is extracted. Sync mirrors are not archives: see
``mirror.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

from sqlalchemy import select

from ..errors import N_, StageBackupError
from ..extensions import db
from ..models import Archive
from ..paths import display
from .archive_ref import ArchiveMissing, ArchiveRef, IntegrityError
from .tape_source import TapeAccess, pull_from_tape

HASH_CHUNK_BYTES = 4 << 20


def archives_of(job_id: int) -> list[ArchiveRef]:
    rows = db.session.scalars(select(Archive).where(Archive.job_id == job_id).order_by(Archive.seq, Archive.id))
    return [
        ArchiveRef(
            id=a.id, seq=a.seq, format=a.format, encrypted=a.encrypted,
            location_kind="sync" if a.format == "sync" else a.location_kind, path=a.path, name=a.name,
            size=a.size, sha256=a.sha256, member_count=a.member_count, input_bytes=a.input_bytes or 0,
            secret_id=a.secret_id, kdf_iterations=a.kdf_iterations,
        )
        for a in rows
    ]


def sha256_of(path: str, progress) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            progress.checkpoint()
    return digest.hexdigest()


def check_integrity(ref: ArchiveRef, path: str, progress) -> None:
    actual = sha256_of(path, progress)
    if actual != ref.sha256:
        raise IntegrityError(ref.label, actual, ref.sha256)


@contextlib.contextmanager
def local_archive(ref: ArchiveRef, *, cache_dir: str, progress, register_partial, tape: TapeAccess | None = None
                  ) -> Iterator[str]:
    """The archive as a local file whose SHA-256 matches the catalog (checked here)."""
    if ref.location_kind == "directory":
        if not ref.path or not os.path.isfile(ref.path):
            raise ArchiveMissing(ref.label, display(ref.path or "no path recorded"))
        check_integrity(ref, ref.path, progress)
        yield ref.path
        return
    if ref.location_kind == "tape":
        with pull_from_tape(ref, cache_dir=cache_dir, progress=progress, register_partial=register_partial,
                            tape=tape) as path:
            yield path
        return
    raise StageBackupError(N_("archive %(label)s: location '%(kind)s' cannot be read"), label=ref.label,
                           kind=ref.location_kind)
