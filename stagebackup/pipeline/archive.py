"""tar.gz archives: tarfile (PAX) streamed through pgzip, SHA-256 computed while writing.

A file is opened *before* its header is written, and its data is copied from the open descriptor with
the size fstat gave: if it shrinks or a read fails part-way, the rest is zero-filled (the archive stays
valid) and an ``[ERROR]`` line names the file, so the job ends as a warning instead of writing a tar
stream that GNU tar cannot read past that member.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

import pgzip

from ..errors import StageBackupError
from .report import Reporter
from .scan import DIR, FILE, Entry

TAR_BUFFER_BYTES = 4 << 20  # tarfile writes 10 KiB records; pgzip gains nothing below ~1 MiB
GZIP_BLOCK_BYTES = 1 << 20
READ_CHUNK_BYTES = 1 << 20


class ArchiveWriteError(StageBackupError):
    """cannot write archive {0}: {1}"""

    @property
    def errno(self) -> int | None:
        return getattr(self.args[1], "errno", None)


@dataclass(frozen=True)
class ArchiveResult:
    path: str
    size: int
    sha256: str
    member_count: int


class HashingWriter:
    """Unbuffered write-through to a file that hashes and counts what reaches it.

    Unbuffered so that a full disk shows up on the write that hit it, as ArchiveWriteError.
    """

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        try:
            offset = 0
            while offset < len(view):
                offset += os.write(self.fd, view[offset:])
        except OSError as exc:
            # Not an OSError any more: a failing *output* must never pass for an unreadable source.
            raise ArchiveWriteError(self.path, exc) from exc
        self.sha256.update(view)
        self.size += len(view)
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


class _ExactReader:
    """Yields exactly ``size`` bytes from an open file, zero-filling after a short read or error."""

    def __init__(self, fd: int, size: int, path: bytes, reporter: Reporter):
        self.fd, self.remaining, self.path, self.reporter = fd, size, path, reporter
        self.failed = False

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        n = self.remaining if n < 0 else min(n, self.remaining)
        parts, got = [], 0
        while got < n and not self.failed:
            try:
                chunk = os.read(self.fd, n - got)  # short reads happen on network file systems
            except OSError as exc:
                self._fail(f"read error ({exc.strerror}); the rest of the file is zero-filled")
                break
            if not chunk:
                self._fail("file shrank while being archived; the rest is zero-filled")
                break
            parts.append(chunk)
            got += len(chunk)
        if got < n:
            parts.append(bytes(n - got))
        data = b"".join(parts) if len(parts) != 1 else parts[0]
        self.remaining -= n
        self.reporter.advance(nbytes=n)
        self.reporter.checkpoint()
        return data

    def _fail(self, note: str) -> None:
        self.failed = True
        self.reporter.log_path("ERROR", self.path, note)


def _open_regular(path: bytes) -> int:
    """Open without following links and without blocking on a FIFO that replaced the file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags | getattr(os, "O_NOATIME", 0))
    except PermissionError:
        return os.open(path, flags)  # O_NOATIME needs ownership


def _arcname(path: bytes) -> str:
    """GNU tar's convention: absolute names stored without the leading slash."""
    return os.fsdecode(path).lstrip("/")


def write_tgz(
    entries: Iterable[Entry], out_path: str, *, level: int, threads: int, reporter: Reporter
) -> ArchiveResult:
    members = 0
    hashing = HashingWriter(out_path)
    try:
        gz = pgzip.PgzipFile(
            fileobj=hashing, mode="wb", compresslevel=level, thread=threads or os.cpu_count() or 1,
            blocksize=GZIP_BLOCK_BYTES,
        )
        with gz:
            tar = tarfile.open(
                fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8",
                errors="surrogateescape", bufsize=TAR_BUFFER_BYTES, copybufsize=READ_CHUNK_BYTES,
            )
            with tar:
                for entry in entries:
                    if _add_entry(tar, entry, reporter):
                        members += 1
                    reporter.advance(files=1, current=entry.path)
                    reporter.checkpoint()
        hashing.close(sync=True)
    finally:
        hashing.close(sync=False)
    return ArchiveResult(out_path, hashing.size, hashing.sha256.hexdigest(), members)


def _add_entry(tar: tarfile.TarFile, entry: Entry, reporter: Reporter) -> bool:
    arcname = _arcname(entry.path)
    if not arcname:  # the source was "/" itself: its own entry has no name
        return False
    if entry.kind != FILE:
        try:
            info = tar.gettarinfo(os.fsdecode(entry.path), arcname)
        except OSError as exc:
            reporter.log_path("ERROR", entry.path, f"vanished or unreadable: {exc.strerror}")
            return False
        if entry.kind == DIR and info.type != tarfile.DIRTYPE:
            reporter.log_path("ERROR", entry.path, "changed type while being archived")
            return False
        tar.addfile(info)
        return True

    try:
        fd = _open_regular(entry.path)
    except OSError as exc:
        reporter.log_path("ERROR", entry.path, f"cannot open: {exc.strerror}")
        return False
    try:
        with os.fdopen(fd, "rb", buffering=0, closefd=True) as handle:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                reporter.log_path("ERROR", entry.path, "is no longer a regular file")
                return False
            info = tar.gettarinfo(arcname=arcname, fileobj=handle)
            if info.type == tarfile.LNKTYPE:  # a hard link to a member already stored
                tar.addfile(info)
            else:
                reader = _ExactReader(fd, info.size, entry.path, reporter)
                tar.addfile(info, reader)
                after = os.fstat(fd)
                if not reader.failed and (after.st_size, after.st_mtime_ns) != (
                    before.st_size, before.st_mtime_ns,
                ):
                    reporter.log_path("ERROR", entry.path, "file changed while being archived")
    except OSError as exc:
        reporter.log_path("ERROR", entry.path, f"cannot archive: {exc.strerror or exc}")
        return False
    reporter.log_path("PACK", entry.path)
    return True
