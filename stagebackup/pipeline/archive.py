"""What every archive writer shares: the output file, its SHA-256, and the member spool for the catalog.

The writers themselves are ``tgz.py`` (tar.gz, optionally encrypted) and ``sevenzip.py`` (7z). Each one
writes members in manifest order and tells a ``MemberSpool`` what it stored, under the exact name it
stored: that is what the catalog (``archive_members``) records, so restore browses tar.gz and 7z alike.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import N_, StageBackupError

# Member kinds in the catalog (archive_members.kind).
FILE_MEMBER, DIR_MEMBER, SYMLINK_MEMBER, HARDLINK_MEMBER = "file", "dir", "symlink", "hardlink"
EXTENSIONS = {("tgz", False): "tar.gz", ("tgz", True): "tar.gz.enc", ("7z", False): "7z", ("7z", True): "7z"}


class ArchiveWriteError(StageBackupError):
    template = N_("cannot write archive %(path)s: %(reason)s")
    params = ("path", "reason")

    @property
    def errno(self) -> int | None:
        return getattr(self.args[1], "errno", None)


@dataclass(frozen=True)
class ArchiveSpec:
    """How to write one archive. ``password`` is never logged or shown."""

    fmt: str  # tgz | 7z
    level: int
    threads: int
    password: str | None = None
    kdf_iterations: int | None = None  # tar.gz encryption (PBKDF2 rounds)

    @property
    def encrypted(self) -> bool:
        return bool(self.password)

    @property
    def extension(self) -> str:
        return EXTENSIONS[(self.fmt, self.encrypted)]


@dataclass(frozen=True)
class ArchiveStats:
    member_count: int
    input_bytes: int


@dataclass(frozen=True)
class ArchiveResult:
    size: int
    sha256: str
    member_count: int
    input_bytes: int


class FileOutput:
    """Unbuffered writes to a file; a failing write (a full disk) is an ArchiveWriteError at once.

    Not an OSError any more: a failing *output* must never pass for an unreadable source.
    """

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        try:
            offset = 0
            while offset < len(view):
                offset += os.write(self.fd, view[offset:])
        except OSError as exc:
            raise ArchiveWriteError(self.path, exc) from exc
        return len(view)

    def flush(self) -> None:
        pass

    def close(self, *, sync: bool = True) -> None:
        if self.fd < 0:
            return
        try:
            if sync:
                os.fsync(self.fd)
        except OSError as exc:
            raise ArchiveWriteError(self.path, exc) from exc
        finally:
            os.close(self.fd)
            self.fd = -1


class HashingOutput:
    """Passes writes through to ``raw`` while hashing and counting them (the archive's SHA-256 and size)."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def sha256_of(path: str, chunk: int = 1 << 20) -> tuple[int, str]:
    """(size, SHA-256) of a finished file (7z rewrites its start header last, so it is hashed afterwards)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def member_row(path: str | bytes, kind: str, size: int = 0, mtime: float = 0.0, mode: int = 0,
               link_target: str | bytes | None = None) -> tuple:
    """A catalog row (``archive_members`` without its ids) for the member stored under ``path``.

    ``(parent, name, kind, size, mtime, mode, link_target)``: path split at its last slash so a folder
    listing is one indexed range, names and link targets as exact bytes, mtime float seconds, the full
    ``st_mode``. ``"a/b/c.txt"`` → ``(b"a/b", b"c.txt", …)``; a top-level member has parent ``b""``.
    """
    parent, _, name = os.fsencode(path).strip(b"/").rpartition(b"/")
    return (parent, name, kind, size, float(mtime), mode, None if link_target is None else os.fsencode(link_target))


_SPILL_LENGTH = struct.Struct("<I")


class MemberSpool:
    """The members one archive stored, as catalog rows (``member_row``), spooled to a file so a million
    members cost no memory.

    The catalog reads the file while the archive is written (``follow``, on its own thread): every ``BATCH``
    rows are one length-prefixed ``marshal`` record, flushed as it is made, so the rows reach the database
    during compression and the writer never waits for it.
    """

    BATCH = 1000
    FOLLOW_ROWS = 10_000  # rows ``follow`` yields at most at once

    def __init__(self, path: str):
        self.path = path
        self._fh = open(path, "wb")
        self._rows: list[tuple] = []
        self.count = 0
        self._written = threading.Condition()
        self._records = 0  # complete records in the file
        self._done = False  # closed (or discarded): no record will follow

    def add(self, path: str, kind: str, size: int, mtime: float, mode: int, link_target: str | None = None) -> None:
        self._rows.append(member_row(path, kind, size, mtime, mode, link_target))
        self.count += 1
        if len(self._rows) >= self.BATCH:
            self._spill()

    def _spill(self) -> None:
        if self._rows:
            data = marshal.dumps(self._rows)
            try:
                self._fh.write(_SPILL_LENGTH.pack(len(data)) + data)
                self._fh.flush()  # a whole record for ``follow``
            except OSError as exc:  # the cache is full: an output error, never a source file's
                raise ArchiveWriteError(self.path, exc) from exc
            self._rows = []
            with self._written:
                self._records += 1
                self._written.notify_all()

    def close(self) -> None:
        if not self._fh.closed:
            try:
                self._spill()
                self._fh.close()
            except OSError as exc:
                raise ArchiveWriteError(self.path, exc) from exc
            finally:
                self._end()

    def _end(self) -> None:
        with self._written:
            self._done = True
            self._written.notify_all()

    def __iter__(self) -> Iterator[tuple]:
        self.close()
        for batch in self.follow():
            yield from batch

    def follow(self) -> Iterator[list[tuple]]:
        """The rows in batches as they are spilled, from any thread, until the spool is closed and all are read.

        Batches that are already waiting come as one list (at most ``FOLLOW_ROWS`` rows), so a reader that fell
        behind catches up in fewer, larger steps.
        """
        read = 0
        with open(self.path, "rb") as fh:
            while True:
                with self._written:
                    while self._records == read and not self._done:
                        self._written.wait()
                    available, done = self._records - read, self._done
                if not available:
                    if done:
                        return
                    continue
                rows: list[tuple] = []
                for _ in range(available):
                    # Length-prefixed records: marshal.load on a file reads field by field, 10x slower than loads.
                    rows += marshal.loads(fh.read(_SPILL_LENGTH.unpack(fh.read(_SPILL_LENGTH.size))[0]))
                    read += 1
                    if len(rows) >= self.FOLLOW_ROWS:
                        break
                yield rows

    def discard(self) -> None:
        try:
            self.close()
        finally:
            self._end()
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
