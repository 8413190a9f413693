"""Reading source files for an archive, shared by the tar.gz and 7z writers.

A file is opened *before* its header is written, and its data is read from the open descriptor with the
size fstat gave: if it shrinks or a read fails part-way, the rest is zero-filled (the archive stays valid)
and an ``[ERROR]`` line names the file, so the job ends as a warning instead of writing an archive that
cannot be read past that member. Both writers look these helpers up through this module (tests replace
them to inject failures).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from .report import Reporter
from .sync_copier import READ_FLAGS, CheckedFolders
from .throttle import ReadThrottle

READ_CHUNK_BYTES = 1 << 20
NOATIME = getattr(os, "O_NOATIME", 0)


def real_roots(sources: Iterable[str]) -> list[tuple[bytes, bytes]]:
    """(the root as the scan names it, its real path) of each source named through a link, longest first.

    The operator named the root, so a link above or at it is followed, once, here; below it nothing is."""
    pairs = {(os.fsencode(os.path.abspath(s)), os.fsencode(os.path.realpath(s))) for s in sources}
    return sorted(((named, real) for named, real in pairs if named != real), key=lambda pair: -len(pair[0]))


class SourceFiles:
    """The archive writers' way to the sources: entries named as the scan named them, reached without
    following a link below a root (``sync_copier.CheckedFolders``: a folder swapped for a link since the scan
    is refused)."""

    def __init__(self, sources: Iterable[str] = ()):
        self.folders = CheckedFolders()
        self._linked_roots = real_roots(sources)

    def real(self, path: bytes) -> bytes:
        for named, real in self._linked_roots:
            if path == named or path.startswith(named + b"/"):
                return real + path[len(named):]
        return path

    def open(self, path: bytes) -> int:
        real = self.real(path)
        try:
            return self.folders.open(real, READ_FLAGS | NOATIME)
        except PermissionError:
            return self.folders.open(real)  # O_NOATIME needs ownership

    def lstat(self, path: bytes) -> os.stat_result:
        return self.folders.lstat(self.real(path))

    def readlink(self, path: bytes) -> bytes:
        return self.folders.readlink(self.real(path))

    def close(self) -> None:
        self.folders.close()


def open_regular(files: SourceFiles, path: bytes) -> int:
    """The seam tests use to make a file unreadable."""
    return files.open(path)


def open_for_archive(files: SourceFiles, path: bytes, reporter: Reporter) -> tuple[int, os.stat_result] | None:
    """``(fd, fstat)`` of a regular file to archive, or None after an ``[ERROR]`` line; the caller closes fd."""
    try:
        fd = open_regular(files, path)
    except OSError as exc:
        reporter.log_path("ERROR", path, f"cannot open: {exc.strerror}")
        return None
    try:
        before = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(before.st_mode):
        os.close(fd)
        reporter.log_path("ERROR", path, "is no longer a regular file")
        return None
    return fd, before


def report_change(fd: int, before: os.stat_result, reader: ExactReader, path: bytes, reporter: Reporter) -> None:
    """After the data is read: an ``[ERROR]`` line when the file changed meanwhile (a failed read said so)."""
    after = os.fstat(fd)
    if not reader.failed and (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        reporter.log_path("ERROR", path, "file changed while being archived")


class ExactReader:
    """Yields exactly ``size`` bytes from an open file, zero-filling after a short read or error.

    ``step`` caps each read, so progress advances at least every ``step`` bytes (the 1 % rule); with
    ``count=False`` the reads advance nothing (the compressor counts the bytes when it has done them).
    ``throttle`` (the job's read limit, ``throttle.ReadThrottle``) caps each read at its chunk and paces them;
    None costs nothing per read.
    """

    def __init__(self, fd: int, size: int, path: bytes, reporter: Reporter, step: int = READ_CHUNK_BYTES, *,
                 count: bool = True, throttle: ReadThrottle | None = None):
        self.fd, self.remaining, self.path, self.reporter = fd, size, path, reporter
        self.step = max(1, step if throttle is None else min(step, throttle.chunk))
        self.count = count
        self.failed = False
        self.throttle = throttle

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        n = self.remaining if n is None or n < 0 else n
        n = min(n, self.remaining, self.step)
        if self.throttle is not None:
            self.throttle.take(n, self.reporter.checkpoint)
        data = b""
        if not self.failed:  # after a failure the rest is zeros: one [ERROR] line per file, not one per chunk
            try:
                data = os.read(self.fd, n)  # one call for nearly every file; network file systems read short
            except OSError as exc:
                self._fail(f"read error ({exc.strerror}); the rest of the file is zero-filled")
        if len(data) < n:
            data = self._complete(data, n)
        self.remaining -= n
        if self.count:
            self.reporter.advance(nbytes=n)
        if self.remaining:  # between chunks of a big file; the caller checkpoints after each file
            self.reporter.checkpoint()
        return data

    def _complete(self, first: bytes, n: int) -> bytes:
        parts, got = [first], len(first)
        while got < n and not self.failed:
            try:
                chunk = os.read(self.fd, n - got)
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
        return b"".join(parts)

    def _fail(self, note: str) -> None:
        self.failed = True
        self.reporter.log_path("ERROR", self.path, note)


def arcname(path: bytes) -> str:
    """GNU tar's convention, for both formats: absolute names stored without the leading slash."""
    return os.fsdecode(path).lstrip("/")
