"""7z archives through py7zr: LZMA2 with no BCJ/delta filters (``7z a -m0=lzma2 -mf=off``), so 7-Zip and
WinRAR open them; with a password AES-256 and encrypted headers (names hidden).

py7zr reads files itself and has no progress callbacks, so members are fed to it here: file data through
``source.ExactReader`` (progress every ``step`` bytes, zero-fill on errors), symlinks (dangling ones too)
as links, and every member's mtime and mode from ``lstat``/``fstat`` (``writef`` would store now and
0600). 7z keeps names as UTF-16: a name that is not valid UTF-8 cannot be stored faithfully, so such a
member is skipped with an ``[ERROR]`` line rather than silently renamed.

py7zr compresses on one thread. LZMA2 streams may reset their dictionary at any chunk, which is how 7-Zip
multi-threads: independent blocks, concatenated. ``ParallelLzma2`` does the same with Python's ``lzma``
(which releases the GIL), so a 7z job uses every core. Its blocks are tens of megabytes: files are read
into them long before they are compressed (35 MB of text was read in 0.1 s, then compressed for 37 s with
the card standing still), so with parallel blocks progress counts bytes compressed, a piece at a time,
not bytes read.
"""

from __future__ import annotations

import io
import lzma
import os
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import py7zr
from py7zr.helpers import ArchiveTimestamp
from py7zr.member import MemberType

from ..paths import is_text
from . import source
from .archive import (
    DIR_MEMBER,
    FILE_MEMBER,
    SYMLINK_MEMBER,
    ArchiveSpec,
    ArchiveStats,
    ArchiveWriteError,
    MemberSpool,
)
from .report import Reporter
from .scan import DIR, FILE, Entry
from .source import SourceFiles
from .throttle import ReadThrottle

# xz/LZMA2 dictionary size per preset; a parallel block is 3 dictionaries, as xz's threaded encoder uses.
_DICT_BYTES = [256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20]
_MAX_BLOCK_BYTES = 96 << 20


def filters_for(level: int, encrypted: bool) -> list[dict]:
    """The filter chain, given explicitly: py7zr's default would add BCJ (which ``-mf=off`` excludes)."""
    chain = [{"id": py7zr.FILTER_LZMA2, "preset": level}]
    if encrypted:
        chain.append({"id": py7zr.FILTER_CRYPTO_AES256_SHA256})
    return chain


class ParallelLzma2:
    """A drop-in for py7zr's LZMA2 coder: blocks compressed on ``threads`` threads, output in order.

    ``on_progress(n)`` is called on the caller's thread, at least every ``REPORT_S`` while it waits, with
    the input bytes compressed since the last call: a block is compressed a ``PIECE`` at a time to count them.
    """

    PIECE = 256 << 10  # about 0.1 s of LZMA2 at level 9: progress moves well within a second
    REPORT_S = 0.2

    def __init__(self, level: int, threads: int, on_progress: Callable[[int], None] | None = None):
        self.filters = [{"id": lzma.FILTER_LZMA2, "preset": level}]
        self.block = min(_MAX_BLOCK_BYTES, max(1 << 20, 3 * _DICT_BYTES[level]))
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="lzma2")
        self.pending: deque = deque()
        self.buf = bytearray()
        self.on_progress = on_progress
        self._lock = threading.Lock()
        self._compressed = self._reported = 0  # input bytes: compressed by the threads, told to on_progress

    def _compress_block(self, data: bytes) -> bytes:
        compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=self.filters)
        view, out = memoryview(data), []
        for start in range(0, len(data), self.PIECE):
            piece = view[start : start + self.PIECE]
            out.append(compressor.compress(piece))
            with self._lock:
                self._compressed += len(piece)
        out.append(compressor.flush())
        return b"".join(out)[:-1]  # drop the end marker (0x00): the next block continues the same stream

    def _report(self) -> None:
        with self._lock:
            compressed = self._compressed
        if self.on_progress is not None and compressed > self._reported:
            delta, self._reported = compressed - self._reported, compressed
            self.on_progress(delta)

    def _oldest(self) -> bytes:
        """The oldest block's output, telling progress while it is compressed."""
        future = self.pending[0]
        while True:
            try:
                result = future.result(timeout=self.REPORT_S)
            except FutureTimeout:
                self._report()
                continue
            self.pending.popleft()
            self._report()
            return result

    def compress(self, data) -> bytes:
        self.buf += data
        while len(self.buf) >= self.block:
            self.pending.append(self.pool.submit(self._compress_block, bytes(self.buf[: self.block])))
            del self.buf[: self.block]
        out = []
        while self.pending and (self.pending[0].done() or len(self.pending) > self.threads):
            out.append(self._oldest())
        return b"".join(out)

    def flush(self) -> bytes:
        if self.buf:
            self.pending.append(self.pool.submit(self._compress_block, bytes(self.buf)))
            self.buf = bytearray()
        out = []
        while self.pending:
            out.append(self._oldest())
        self.pool.shutdown(wait=True)
        return b"".join(out) + b"\x00"

    def abort(self) -> None:
        """Give up now: queued blocks are cancelled and a block being compressed finishes in the background,
        unread. Waiting for it took up to a minute at high levels (a cancel must answer within seconds)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pending.clear()


def write_7z(
    entries: Iterable[Entry], out_path: str, spec: ArchiveSpec, *, reporter: Reporter, members: MemberSpool,
    step: int = source.READ_CHUNK_BYTES, throttle: ReadThrottle | None = None, files: SourceFiles | None = None,
) -> ArchiveStats:
    """``throttle``: the job's read limit, paced as the sources are read (None: no limit); ``files``: how the
    sources are reached (``source.SourceFiles`` of the job's sources: a root named through a link)."""
    parallel = None
    files = files or SourceFiles()
    try:
        with open(out_path, "w+b") as fh:
            archive = py7zr.SevenZipFile(
                fh, "w", filters=filters_for(spec.level, spec.encrypted), password=spec.password or None,
                header_encryption=spec.encrypted,
            )
            folder = archive.header.initialize()
            threads = spec.threads or os.cpu_count() or 1
            if threads > 1:
                parallel = ParallelLzma2(spec.level, threads, on_progress=_told(reporter))
                folder.get_compressor().chain[0] = parallel
            writer = _MemberWriter(archive, folder, reporter, members, step, count_read=parallel is None,
                                   throttle=throttle, files=files)
            for entry in entries:
                writer.add(entry)
                reporter.advance(files=int(entry.kind == FILE), current=entry.path)  # files: regular files only
                reporter.checkpoint()
            archive.close()
            parallel = None
            os.fsync(fh.fileno())
    except OSError as exc:  # the sources' errors are handled per member: what is left is the output
        raise ArchiveWriteError(out_path, exc) from exc
    finally:
        files.close()
        if parallel is not None:
            parallel.abort()
    return ArchiveStats(members.count, writer.input_bytes)


def _told(reporter: Reporter) -> Callable[[int], None]:
    def on_progress(nbytes: int) -> None:
        reporter.advance(nbytes=nbytes)
        reporter.checkpoint()  # a cancel is seen while the last blocks are compressed, too

    return on_progress


class _MemberWriter:
    def __init__(self, archive: py7zr.SevenZipFile, folder, reporter: Reporter, members: MemberSpool, step: int,
                 *, count_read: bool, throttle: ReadThrottle | None, files: SourceFiles):
        self.archive, self.folder, self.reporter, self.members, self.step = archive, folder, reporter, members, step
        self.throttle, self.files = throttle, files
        self.count_read = count_read  # False: ParallelLzma2 counts the bytes as it compresses them
        self.input_bytes = 0

    def _append(self, name: str, st: os.stat_result, member_type: MemberType, data=None, size: int = 0) -> None:
        info = {
            "origin": None, "filename": name, "emptystream": data is None,
            "attributes": member_type.attributes(st),
            "creationtime": ArchiveTimestamp.from_datetime(st.st_ctime),
            "lastwritetime": ArchiveTimestamp.from_datetime(st.st_mtime),
            "lastaccesstime": ArchiveTimestamp.from_datetime(st.st_atime),
        }
        if data is not None:
            info["data"], info["uncompressed"] = data, size
        archive = self.archive
        archive.header.files_info.files.append(info)
        archive.header.files_info.emptyfiles.append(info["emptystream"])
        archive.files.append(info)
        archive.worker.archive(archive.fp, archive.files, self.folder, deref=False)

    def add(self, entry: Entry) -> None:
        name = source.arcname(entry.path)
        if not name:
            return
        if not is_text(name):
            self.reporter.log_path(
                "ERROR", entry.path, "name is not valid UTF-8: 7z cannot store it unchanged, so it was left out"
            )
            return
        if entry.kind == FILE:
            self._add_file(entry.path, name)
            return
        try:
            st = self.files.lstat(entry.path)
            target = self.files.readlink(entry.path) if entry.kind != DIR else b""
        except OSError as exc:
            self.reporter.log_path("ERROR", entry.path, f"vanished or unreadable: {exc.strerror}")
            return
        if entry.kind == DIR:
            if not stat.S_ISDIR(st.st_mode):
                self.reporter.log_path("ERROR", entry.path, "changed type while being archived")
                return
            self._append(name, st, MemberType.DIRECTORY)
            self.members.add(name, DIR_MEMBER, 0, st.st_mtime, st.st_mode)
            return
        if not stat.S_ISLNK(st.st_mode):
            self.reporter.log_path("ERROR", entry.path, "changed type while being archived")
            return
        self._append(name, st, MemberType.SYMLINK, io.BytesIO(target), len(target))
        self.members.add(name, SYMLINK_MEMBER, 0, st.st_mtime, st.st_mode, os.fsdecode(target))

    def _add_file(self, path: bytes, name: str) -> None:
        reporter = self.reporter
        opened = source.open_for_archive(self.files, path, reporter)
        if opened is None:
            return
        fd, before = opened
        try:
            reader = source.ExactReader(fd, before.st_size, path, reporter, self.step, count=self.count_read,
                                        throttle=self.throttle)
            self._append(name, before, MemberType.FILE, reader, before.st_size)
            self.input_bytes += before.st_size
            self.members.add(name, FILE_MEMBER, before.st_size, before.st_mtime, before.st_mode)
            source.report_change(fd, before, reader, path, reporter)
        finally:
            os.close(fd)
        reporter.log_path("PACK", path)
