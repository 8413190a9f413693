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
from dataclasses import dataclass

from sqlalchemy import select

from ..errors import StageBackupError
from ..extensions import db
from ..models import Archive
from ..paths import display

HASH_CHUNK_BYTES = 4 << 20


class IntegrityError(StageBackupError):
    """archive {0} is damaged: its SHA-256 is {1}, the catalog recorded {2}; nothing was extracted from it"""


class ArchiveMissing(StageBackupError):
    """archive {0} is not where the catalog says ({1})"""


@dataclass(frozen=True)
class ArchiveRef:
    """An archive row as plain values (no ORM object is held while the job works)."""

    id: int
    seq: int
    format: str  # tgz | 7z | sync
    encrypted: bool
    location_kind: str  # directory | tape | sync
    path: str | None
    name: str | None
    size: int
    sha256: str
    member_count: int
    input_bytes: int
    secret_id: int | None
    kdf_iterations: int | None

    @property
    def label(self) -> str:
        return display(self.name or (os.path.basename(self.path) if self.path else f"archive #{self.id}"))


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
def local_archive(ref: ArchiveRef, *, cache_dir: str, progress, register_partial, drive: str | None = None
                  ) -> Iterator[str]:
    """The archive as a local file whose SHA-256 matches the catalog (checked here)."""
    if ref.location_kind == "directory":
        if not ref.path or not os.path.isfile(ref.path):
            raise ArchiveMissing(ref.label, display(ref.path or "no path recorded"))
        check_integrity(ref, ref.path, progress)
        yield ref.path
        return
    if ref.location_kind == "tape":
        from .tape_source import pull_from_tape

        with pull_from_tape(ref, cache_dir=cache_dir, progress=progress, register_partial=register_partial,
                            drive=drive) as path:
            yield path
        return
    raise StageBackupError(f"archive {ref.label}: location {ref.location_kind!r} cannot be read")
