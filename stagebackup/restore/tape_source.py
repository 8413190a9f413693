"""An archive on tape, pulled into the cache (seed 001 §2.2) through the tape module's reading API.

The drive is positioned straight to the archive's tape file(s) from the catalog (``tape_files``); the
copy is hashed while it is written and compared with the archive's SHA-256 before anything is extracted.
The cached copy is a partial output of the job and is removed when the archive has been read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

from flask import current_app

from ..errors import N_, CacheFull, StageBackupError, human_bytes
from ..tape.reader import read_archive
from .archive_ref import ArchiveRef, IntegrityError


@contextlib.contextmanager
def pull_from_tape(ref: ArchiveRef, *, cache_dir: str, progress, register_partial, drive: str | None
                   ) -> Iterator[str]:
    if not drive:
        raise StageBackupError(N_("archive %(label)s is on tape, but the restore job names no drive"), label=ref.label)
    st = os.statvfs(cache_dir)
    if st.f_bavail * st.f_frsize < ref.size:
        raise CacheFull(path=cache_dir, needed=human_bytes(ref.size),
                        available=human_bytes(st.f_bavail * st.f_frsize))
    path = os.path.join(cache_dir, f"restore-archive-{ref.id}")
    register_partial(path)
    digest = hashlib.sha256()
    try:
        with open(path, "wb") as out:
            for block in read_archive(current_app.config, drive, ref.id):
                out.write(block)
                digest.update(block)
                progress.checkpoint()
        if digest.hexdigest() != ref.sha256:
            raise IntegrityError(ref.label, digest.hexdigest(), ref.sha256)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
