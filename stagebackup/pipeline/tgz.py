"""tar.gz archives: PAX tar streamed through zlib-ng's threaded gzip writer, optionally AES-encrypted.

The tar stream is built here rather than by ``tarfile``, whose per-member cost dominated a job of many
small files: headers come from ``tarheader``, file data is read from descriptors opened before the header
is written (``source``).

Output chain: tar records → gzip_ng_threaded → (EncryptingWriter) → ``out`` (which hashes and writes the file).
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable

from zlib_ng import gzip_ng_threaded

from . import source
from .archive import (
    DIR_MEMBER,
    FILE_MEMBER,
    HARDLINK_MEMBER,
    SYMLINK_MEMBER,
    ArchiveSpec,
    ArchiveStats,
    MemberSpool,
)
from .crypto import EncryptingWriter
from .report import Reporter
from .scan import DIR, FILE, Entry
from .source import SourceFiles
from .tarheader import BLOCK, Names, tar_header
from .throttle import ReadThrottle

RECORD = 20 * BLOCK  # tar pads the end of the archive to whole 10 KiB records, as GNU tar does
GZIP_BLOCK_BYTES = 1 << 20
ZERO_BLOCK = bytes(BLOCK)


class TarGzStream:
    """The tar byte stream's sink: zlib-ng's threaded gzip writer, then (optionally) encryption.

    ``gzip_ng_threaded`` (pigz's design: blocks compressed in parallel, each primed with the previous block's last
    32 KiB, one gzip member) replaced a pgzip subclass that patched pgzip's private methods; measured with
    ``bench/bench_tgz.py`` it is as fast or faster and its output is a little smaller (see docs/performance.md).
    Its buffered writer coalesces the many small tar records into whole blocks for the compression threads.
    """

    def __init__(self, out, spec: ArchiveSpec):
        self.encryptor = None
        raw = out
        if spec.password:
            self.encryptor = raw = EncryptingWriter(out, spec.password, spec.kdf_iterations or 1)
        self.gz = gzip_ng_threaded.open(
            raw, "wb", compresslevel=spec.level, threads=spec.threads or os.cpu_count() or 1,
            block_size=GZIP_BLOCK_BYTES,
        )
        self.offset = 0

    def write(self, data) -> None:
        self.gz.write(data)
        self.offset += len(data)

    def pad(self) -> None:
        if self.offset % BLOCK:
            self.write(bytes(BLOCK - self.offset % BLOCK))

    def close(self) -> None:
        self.write(ZERO_BLOCK * 2)
        if self.offset % RECORD:
            self.write(bytes(RECORD - self.offset % RECORD))
        self.gz.close()
        if self.encryptor is not None:
            self.encryptor.close()

    def abort(self) -> None:
        """Stop the compression threads; what they still write goes to an output that is being discarded."""
        try:
            self.gz.close()
        except Exception:  # noqa: BLE001 - the error that caused the abort is the one that matters
            pass


def write_tgz(
    entries: Iterable[Entry], out, spec: ArchiveSpec, *, reporter: Reporter, members: MemberSpool,
    step: int = source.READ_CHUNK_BYTES, throttle: ReadThrottle | None = None, files: SourceFiles | None = None,
) -> ArchiveStats:
    """``throttle``: the job's read limit, paced as the sources are read (None: no limit); ``files``: how the
    sources are reached (``source.SourceFiles`` of the job's sources: a root named through a link)."""
    stream = TarGzStream(out, spec)
    files = files or SourceFiles()
    writer = _MemberWriter(stream, reporter, members, step, throttle, files)
    try:
        for entry in entries:
            writer.add(entry)
            reporter.advance(files=int(entry.kind == FILE), current=entry.path)  # files: regular files only
            reporter.checkpoint()
        stream.close()
    except BaseException:
        stream.abort()
        raise
    finally:
        files.close()
    return ArchiveStats(members.count, writer.input_bytes)


class _MemberWriter:
    def __init__(self, stream: TarGzStream, reporter: Reporter, members: MemberSpool, step: int,
                 throttle: ReadThrottle | None, files: SourceFiles):
        self.stream, self.reporter, self.members, self.step = stream, reporter, members, step
        self.throttle, self.files = throttle, files
        self.names = Names()
        self.inodes: dict[tuple[int, int], str] = {}  # hard links: first name stored for (dev, inode)
        self.input_bytes = 0

    def add(self, entry: Entry) -> None:
        name = source.arcname(entry.path)
        if not name:  # the source was "/" itself: its own entry has no name
            return
        if entry.kind == FILE:
            self._add_file(entry.path, name)
            return
        try:
            st = self.files.lstat(entry.path)
            target = os.fsdecode(self.files.readlink(entry.path)) if entry.kind != DIR else ""
        except OSError as exc:
            self.reporter.log_path("ERROR", entry.path, f"vanished or unreadable: {exc.strerror}")
            return
        is_dir = entry.kind == DIR
        if not (stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISLNK(st.st_mode)):
            self.reporter.log_path("ERROR", entry.path, "changed type while being archived")
            return
        if is_dir:
            self.stream.write(tar_header(name + "/", st, tarfile.DIRTYPE, 0, "", self.names))
            self.members.add(name, DIR_MEMBER, 0, st.st_mtime, st.st_mode)
        else:
            self.stream.write(tar_header(name, st, tarfile.SYMTYPE, 0, target, self.names))
            self.members.add(name, SYMLINK_MEMBER, 0, st.st_mtime, st.st_mode, target)

    def _add_file(self, path: bytes, name: str) -> None:
        reporter = self.reporter
        opened = source.open_for_archive(self.files, path, reporter)
        if opened is None:
            return
        fd, before = opened
        try:
            key = (before.st_dev, before.st_ino)
            first = self.inodes.get(key) if before.st_nlink > 1 else None
            if first is not None:  # a hard link to a member already stored
                self.stream.write(tar_header(name, before, tarfile.LNKTYPE, 0, first, self.names))
                self.members.add(name, HARDLINK_MEMBER, 0, before.st_mtime, before.st_mode, first)
                reporter.log_path("PACK", path)
                return
            if before.st_nlink > 1:
                self.inodes[key] = name
            size = before.st_size
            self.stream.write(tar_header(name, before, tarfile.REGTYPE, size, "", self.names))
            reader = source.ExactReader(fd, size, path, reporter, self.step, throttle=self.throttle)
            while data := reader.read(self.step):
                self.stream.write(data)
            self.stream.pad()
            self.input_bytes += size
            self.members.add(name, FILE_MEMBER, size, before.st_mtime, before.st_mode)
            source.report_change(fd, before, reader, path, reporter)
        except OSError as exc:
            reporter.log_path("ERROR", path, f"cannot archive: {exc.strerror or exc}")
            return
        finally:
            os.close(fd)
        reporter.log_path("PACK", path)
