"""An archive on tape, pulled into the cache (seed 001 §2.2) through the tape module's reading API.

The drive is positioned straight to the archive's tape file(s) from the catalog (``tape_files``), piece
after piece: an archive that reached the end of a tape continues on the next one. Each piece's tape is
looked for in the job's own drive first, then in every other drive no other job holds; when no drive has
it, the job waits for the operator to load it (``tape.waiting``, the loop a backup waiting for a new tape
uses: status ``waiting_media``, the label on the card and the drive card), and goes on when it is there.
Each piece is checked against its SHA-256 as it is read, and the whole copy against the archive's before
anything is extracted. The cached copy is a partial output of the job and is removed when the archive has
been read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app

from ..errors import N_, CacheFull, StageBackupError, human_bytes
from ..extensions import db
from ..tape.errors import TapeError
from ..tape.media import drives_to_read
from ..tape.needs import tapes_needed
from ..tape.reader import NOT_LOADED, TapeReader, find_tape, read_archive
from ..tape.waiting import MEDIA_POLL_S, wait_for_tape
from .archive_ref import ArchiveRef, IntegrityError


@dataclass(frozen=True)
class TapeAccess:
    """How a restore or verify job reads tape: ``drive`` is the one it holds, ``job_id`` the job."""

    drive: str | None
    job_id: int
    poll_s: float = MEDIA_POLL_S


class TapeFinder:
    """Opens the tape with a label for one job, waiting for the operator when no drive holds it."""

    def __init__(self, access: TapeAccess, reporter):
        self.access, self.reporter = access, reporter
        self.config = current_app.config

    def _find(self, label: str) -> TapeReader:
        return find_tape(self.config, drives_to_read(self.config, self.access.drive, self.access.job_id), label)

    def open(self, label: str) -> TapeReader:
        try:
            return self._find(label)
        except NOT_LOADED as exc:
            reason = str(exc)
        return wait_for_tape(
            self.reporter, lambda: self._find(label), prompt=f"load tape {label} in {self.access.drive}",
            reason=reason, retry_on=(TapeError,), poll_s=self.access.poll_s, stage="read", label=label,
            ready=lambda reader: f"tape {label} found in {reader.drive}: continuing")


def announce_tapes(reporter, catalog_job_id: int, archive_ids: list[int] | None = None) -> None:
    """The job's log says which tapes it will read, in order, before it reads the first."""
    labels = tapes_needed(catalog_job_id, archive_ids)
    db.session.commit()
    if labels:
        reporter.log("INFO", f"tapes needed, in the order they are read: {', '.join(labels)}")


@contextlib.contextmanager
def pull_from_tape(ref: ArchiveRef, *, cache_dir: str, progress, register_partial, tape: TapeAccess | None
                   ) -> Iterator[str]:
    if tape is None or not tape.drive:
        raise StageBackupError(N_("archive %(label)s is on tape, but the restore job names no drive"), label=ref.label)
    st = os.statvfs(cache_dir)
    if st.f_bavail * st.f_frsize < ref.size:
        raise CacheFull(path=cache_dir, needed=human_bytes(ref.size),
                        available=human_bytes(st.f_bavail * st.f_frsize))
    path = os.path.join(cache_dir, f"restore-archive-{ref.id}")
    register_partial(path)
    digest = hashlib.sha256()

    def piece_read(piece: dict, drive: str) -> None:
        progress.log("INFO", f"archive {ref.label}: piece {piece['piece']} (tape {piece['label']} file "
                             f"{piece['file_number']}, {drive}) read, SHA-256 verified")

    try:
        with open(path, "wb") as out:
            for block in read_archive(current_app.config, tape.drive, ref.id, open_tape=TapeFinder(tape, progress).open,
                                      on_piece=piece_read):
                out.write(block)
                digest.update(block)
                progress.checkpoint()
        if digest.hexdigest() != ref.sha256:
            raise IntegrityError(ref.label, digest.hexdigest(), ref.sha256)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
