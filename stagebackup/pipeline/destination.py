"""Where finished archives go, and the directory destination.

``ArchiveSink`` is the seam between the pipeline and a destination: the backup hands each finished
archive to ``put`` (from the copy stage, which may overlap with compressing the next group), and calls
``close`` once. ``DirectorySink`` is below; the tape drive's sink lives in ``tape/`` and implements the
same protocol, so the pipeline never knows which one it feeds. With ``COMPRESS_DIRECTLY_TO_TAPE`` the
archive is not staged in the cache: the pipeline calls ``open_stream`` instead of ``put`` and writes the
archive into it as it is compressed (see ``ArchiveStream``).

Threads: ``put`` runs on the pipeline's copy thread while the main thread compresses the next group. A
sink writes no job state: it reports facts to the reporter it was given (safe from either thread). The tape
sink's media catalog writes from that thread all go through ``tape/ledger.py``. ``open_stream``, the stream's
methods and ``close`` run on the main thread. The reporter a sink is given is safe to use from either.

Copy a finished archive into a destination directory, atomically and verified:
The copy is written under a hidden temporary name, fsynced, checked against the SHA-256 computed while
compressing, renamed to its final name and the directory fsynced: a crash leaves either nothing under
the final name or the whole, verified archive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import DestinationError
from .report import Reporter

COPY_CHUNK_BYTES = 1 << 20


@dataclass
class Placement:
    """Where an archive ended up: recorded in the catalog with the archive, in one transaction."""

    location_kind: str  # directory | tape
    path: str | None = None  # directory: the final file
    details: dict = field(default_factory=dict)  # tape: label(s), file number(s), blocks…
    # tape: the ``tape_files`` rows of its pieces, linked to the archive row in the transaction that records it
    tape_file_ids: list[int] = field(default_factory=list)


class ArchiveStream(Protocol):
    """One archive written straight into the destination, in order, as it is produced."""

    def write(self, data: bytes) -> int:
        """Append bytes; raise DestinationError (or ArchiveWriteError) when the destination fails."""

    def commit(self, sha256: str) -> Placement:
        """The archive is complete: make it durable under its final name; returns where it is."""

    def abort(self) -> None:
        """The archive failed part-way: remove (or, on tape, void) what was written. Never raises."""


class ArchiveSink(Protocol):
    kind: str

    def prepare(self, name: str, seq: int) -> None:
        """On the job's thread, before ``put``: register (as partial outputs) what ``put`` will create."""

    def put(self, staged_path: str, name: str, sha256: str, seq: int) -> Placement:
        """Move one finished archive from the cache; returns once it is durable and verified. Runs on
        the copy thread: it may not write job state, only report through its reporter."""

    def open_stream(self, name: str, seq: int) -> ArchiveStream:
        """Start writing archive ``seq`` (file name ``name``) directly, without staging in the cache."""

    def close(self, ok: bool) -> None:
        """After the last archive (ok) or on failure; a tape sink writes its index file here."""

    # Optional: ``plan(total_input_bytes) -> dict`` is called once, on the main thread, after the scan and
    # before the first archive (a tape sink returns the job's tape plan; the job's reporter records it).


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_path(directory: str, name: str) -> str:
    """``name`` in ``directory``, with -1, -2… before the extension if it is taken."""
    stem, dot, ext = name.partition(".")
    candidate, n = os.path.join(directory, name), 0
    while os.path.lexists(candidate):
        n += 1
        candidate = os.path.join(directory, f"{stem}-{n}{dot}{ext}")
    return candidate


def _link_instead_of_copy(source: str, temp: str) -> bool:
    """Cache and destination on one file system: a hard link moves no bytes.

    The staged archive was fsynced and hashed as it was written, and a link is the same inode, so there
    is nothing to copy or re-verify; only the new name must be made durable (the directory fsync).
    """
    try:
        os.link(source, temp)
    except OSError:  # another file system (EXDEV), or one without hard links: copy instead
        return False
    return True


def reserve_names(dest_dir: str, name: str, register_partial: Callable[[str], None]) -> tuple[str, str]:
    """(final, temporary) paths for an archive about to be written into ``dest_dir``, registered first.

    Both names: until the catalog records the archive, even the renamed file belongs to an unfinished
    job, and recovery or failure handling deletes it rather than leave an uncatalogued archive behind.
    Runs on the job's thread (the registration is job state).
    """
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as exc:
        raise DestinationError(dest_dir, exc.strerror) from exc
    final = unique_path(dest_dir, name)
    temp = os.path.join(dest_dir, f".{os.path.basename(final)}.partial")
    register_partial(temp)
    register_partial(final)
    return final, temp


def copy_to_directory(source: str, final: str, temp: str, *, expected_sha256: str, reporter: Reporter) -> str:
    dest_dir = os.path.dirname(final)
    try:
        if not _link_instead_of_copy(source, temp):
            _copy_verified(source, temp, expected_sha256, reporter, dest_dir)
        os.chmod(temp, 0o640)
        os.rename(temp, final)
        _fsync_dir(dest_dir)
    except OSError as exc:
        raise DestinationError(dest_dir, exc.strerror or str(exc)) from exc
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)
    return final


def _copy_verified(source: str, temp: str, expected_sha256: str, reporter: Reporter, dest_dir: str) -> None:
    """Copy and fsync; the copy's SHA-256 must be the archive's (a bad disk or cable shows up here)."""
    digest = hashlib.sha256()
    with open(source, "rb") as src:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            while chunk := src.read(COPY_CHUNK_BYTES):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
                digest.update(chunk)
                reporter.checkpoint()
            os.fsync(out)
        finally:
            os.close(out)
    if digest.hexdigest() != expected_sha256:
        raise DestinationError(dest_dir, "the copy does not match the archive's SHA-256")


class DirectoryStream:
    """An archive written under a hidden temporary name in the destination, renamed once complete."""

    def __init__(self, dest_dir: str, name: str, register_partial: Callable[[str], None]):
        self.dest_dir = dest_dir
        self.final, self.temp = reserve_names(dest_dir, name, register_partial)
        self.digest = hashlib.sha256()
        try:
            self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DestinationError(dest_dir, exc.strerror) from exc

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        try:
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            raise DestinationError(self.temp, exc.strerror) from exc
        self.digest.update(data)
        return len(data)

    def commit(self, sha256: str) -> Placement:
        try:
            if self.digest.hexdigest() != sha256:
                raise DestinationError(self.dest_dir, "the written archive does not match its SHA-256")
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.chmod(self.temp, 0o640)
            os.rename(self.temp, self.final)
            _fsync_dir(self.dest_dir)
        except OSError as exc:
            self.abort()
            raise DestinationError(self.dest_dir, exc.strerror or str(exc)) from exc
        except BaseException:
            self.abort()
            raise
        return Placement("directory", self.final)

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if os.path.lexists(self.temp):
            os.unlink(self.temp)


class DirectorySink:
    kind = "directory"

    def __init__(self, dest_dir: str, reporter: Reporter, register_partial: Callable[[str], None]):
        self.dest_dir, self.reporter, self.register_partial = dest_dir, reporter, register_partial
        self._reserved: dict[int, tuple[str, str]] = {}

    def prepare(self, name: str, seq: int) -> None:
        self._reserved[seq] = reserve_names(self.dest_dir, name, self.register_partial)

    def put(self, staged_path: str, name: str, sha256: str, seq: int) -> Placement:
        final, temp = self._reserved.pop(seq)
        copy_to_directory(staged_path, final, temp, expected_sha256=sha256, reporter=self.reporter)
        return Placement("directory", final)

    def open_stream(self, name: str, seq: int) -> DirectoryStream:
        return DirectoryStream(self.dest_dir, name, self.register_partial)

    def close(self, ok: bool) -> None:
        pass
