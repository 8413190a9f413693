"""Sync, copy stage: carry out the plan written by ``sync_plan`` in the mirror.

Every file and link is first made under a temporary name in its final directory with its metadata set, then
renamed over its real name; a file's rename waits until its data is durable, which ``durable`` does a batch of
files at a time (one ``syncfs`` instead of an ``fsync`` per file). A crash leaves the old version or the new
one under the real name, never a half-written file (temporary files are removed by the next run). Sparse files
stay sparse (only their data segments are copied, found with ``SEEK_DATA``/``SEEK_HOLE``); ``copy_file_range``
lets the kernel copy (or reflink) the data without passing it through Python.

A source file that cannot be read is an ``[ERROR]`` line and leaves the mirror's copy as it was; a full or
read-only destination fails the job, since every later file would fail the same way.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import DestinationError
from ..paths import display
from . import sync_plan as plan_ops
from .durable import Batch, Deferred
from .report import Reporter
from .sync_plan import TEMP_PREFIX, Root
from .throttle import ReadThrottle

CHUNK_BYTES = 64 << 20  # between two cancel checks inside one large file
FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
NO_COPY_FILE_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}


def read_plan(source: BinaryIO, chunk_size: int = 1 << 20) -> Iterator[tuple[bytes, int, int, bytes]]:
    """(op, root index, number, rel) records."""
    pending = b""
    while chunk := source.read(chunk_size):
        records = (pending + chunk).split(b"\0")
        pending = records.pop()
        for record in records:
            op, root, number, rel = record.split(b" ", 3)
            yield op, int(root), int(number), rel
    if pending:
        raise ValueError("truncated sync plan record")


def _open_source(path: bytes) -> int:
    """Open a source file for reading (the seam tests use to make a file unreadable)."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _copy_chunk(fin: int, fout: int, offset: int, count: int, state: dict) -> int:
    """Copy up to ``count`` bytes at ``offset``; returns the bytes copied (0 at the end of the file)."""
    if state.get("copy_file_range", True):
        try:
            return os.copy_file_range(fin, fout, count, offset, offset)
        except OSError as exc:
            if exc.errno not in NO_COPY_FILE_RANGE:
                raise
            state["copy_file_range"] = False  # another file system or an old kernel: plain reads
    data = os.pread(fin, min(count, 1 << 20), offset)
    view = memoryview(data)
    written = 0
    while written < len(data):
        written += os.pwrite(fout, view[written:], offset + written)
    return len(data)


def _create_file(path: bytes) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)


def _data_segments(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the data of a sparse file; holes are left out."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole is left
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, min(end, size)
        offset = end


class Applier:
    def __init__(self, roots: list[Root], dest: bytes, job_id: int, reporter: Reporter, *,
                 throttle: ReadThrottle | None = None):
        self.roots, self.dest, self.job_id, self.reporter = roots, dest, job_id, reporter
        # The job's read limit: each copy is at most its chunk, paced; progress then advances chunk by chunk.
        self.throttle = throttle
        self._chunk = CHUNK_BYTES if throttle is None else throttle.chunk
        self._report_every = CHUNK_BYTES // 2 if throttle is None else throttle.chunk
        self.owners = os.geteuid() == 0
        self.uncertain: set[bytes] = set()  # catalog paths whose planned state may not have been reached
        self._names = itertools.count(1)
        self._copy_state: dict = {}
        self._file_progress = 0  # bytes of the current file already counted in the progress
        self.batch = Batch(dest, self._deferred_failed)

    # -- driving ---------------------------------------------------------------------------------
    def apply(self, records) -> None:
        """Carry out the plan; on return everything it changed is durable."""
        try:
            self._apply(records)
            self.batch.finish()
        except OSError as exc:
            self.batch.discard()
            if exc.errno in FATAL_ERRNOS or exc.errno == errno.EIO:  # syncfs: the data may not be on disk
                raise DestinationError(display(self.dest), exc.strerror) from exc
            raise
        except BaseException:
            self.batch.discard()
            raise

    def _apply(self, records) -> None:
        for op, index, number, rel in records:
            self.reporter.checkpoint()
            root = self.roots[index]
            src = root.src + b"/" + rel if rel else root.src
            dst = root.dest + b"/" + rel if rel else root.dest
            shown = root.name + b"/" + rel if rel else root.name  # what the log shows: the mirror's path
            try:
                try:
                    self._one(op, number, src, dst, shown, is_root=not rel)
                except PermissionError:
                    if self.owners or not _make_parent_writable(dst):
                        raise
                    # A read-only directory of the mirror (mirrored from a read-only source directory):
                    # writable for now; its own permissions are set again after its contents.
                    self._one(op, number, src, dst, shown, is_root=not rel)
            except OSError as exc:
                where = src if op in (plan_ops.NEW_FILE, plan_ops.CHANGED_FILE, plan_ops.LINK, plan_ops.ATTRS) else dst
                self._failed(shown, where, exc)

    def _failed(self, shown: bytes, where: bytes, exc: OSError) -> None:
        if exc.errno in FATAL_ERRNOS:
            raise DestinationError(display(self.dest), exc.strerror) from exc
        self.uncertain.add(shown)
        if exc.filename is not None:
            where = os.fsencode(exc.filename)
        self.reporter.log_path("ERROR", where, f"cannot sync: {exc.strerror or exc}")

    def _deferred_failed(self, action: Deferred, exc: OSError) -> None:
        self._failed(action.shown, action.src, exc)

    def _one(self, op: bytes, number: int, src: bytes, dst: bytes, shown: bytes, *, is_root: bool) -> None:
        reporter = self.reporter
        if op in (plan_ops.NEW_FILE, plan_ops.CHANGED_FILE):
            self._copy_file(src, dst, shown, "ADD" if op == plan_ops.NEW_FILE else "SYNC")
            reporter.advance(files=1, current=src)
        elif op == plan_ops.LINK:
            self._copy_link(src, dst)
            reporter.log_path("SYNC" if number else "ADD", shown, f"-> {display(os.readlink(dst))}")
            reporter.advance(current=src)  # a link: the job's file count counts regular files
        elif op == plan_ops.ATTRS:
            self._set_attrs(os.lstat(src), dst)
            reporter.log_path("SYNC", shown, "permissions, owner or time")
        elif op == plan_ops.MKDIR:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if not os.path.isdir(dst):
                os.mkdir(dst, 0o700)  # writable for us until its own metadata is set after its contents
        elif op == plan_ops.DIR_ATTRS:
            st = os.stat(src) if is_root else os.lstat(src)  # a root is followed, as in scan
            if not self.batch.add_after_files(lambda: self._set_attrs(st, dst)):
                self._set_attrs(st, dst)
        elif op == plan_ops.DELETE:
            _remove(dst)
            reporter.log_path("SYNC", shown, "removed" + (f" ({number} files)" if number > 1 else ""))
        elif op == plan_ops.REPLACE:
            _remove(dst)
            reporter.log_path("SYNC", shown, "replaced by a directory")
        elif op == plan_ops.CLEAN_TEMP:
            _remove(dst)
            reporter.log_path("INFO", shown, "removed a partial file left by an interrupted sync")
        else:
            raise ValueError(f"unknown sync plan operation {op!r}")

    def clean_top_level_temps(self, is_temp_name) -> None:
        try:
            names = os.listdir(self.dest)
        except FileNotFoundError:
            return
        for name in names:
            if is_temp_name(name):
                _remove(os.path.join(self.dest, name))
                self.reporter.log_path("INFO", name, "removed a partial file left by an interrupted sync")

    # -- files and links -------------------------------------------------------------------------
    def _create_temp(self, dst: bytes, create):
        """A new temporary name beside ``dst``, created by ``create(path)``; returns (path, its result)."""
        directory = dst[:dst.rindex(b"/")]
        while True:
            temp = b"%s/%s%d-%d.tmp" % (directory, TEMP_PREFIX, self.job_id, next(self._names))
            try:
                return temp, create(temp)
            except FileExistsError:  # left by an earlier attempt of this job: removed by the next scan
                continue

    def _copy_file(self, src: bytes, dst: bytes, shown: bytes, tag: str) -> None:
        """Copy one file to a temporary name and queue its rename (logged as ``tag`` when it happens); an
        [ERROR] line instead when the source cannot be read."""
        try:
            fin = _open_source(src)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                self.reporter.log_path("SKIP", src, "vanished since the scan")
            else:
                self.reporter.log_path("ERROR", src, f"cannot open: {exc.strerror}")
            self.uncertain.add(shown)
            return
        try:
            st = os.fstat(fin)
            if not stat.S_ISREG(st.st_mode):
                self.reporter.log_path("ERROR", src, "is no longer a regular file")
                self.uncertain.add(shown)
                return
            temp, fout = self._create_temp(dst, _create_file)
            queued = False
            try:
                try:
                    self._copy_data(fin, fout, st)
                except OSError as exc:
                    if exc.errno in FATAL_ERRNOS:
                        raise
                    self.reporter.log_path("ERROR", src, f"read error, the mirror keeps its old copy: {exc.strerror}")
                    self.uncertain.add(shown)
                    return
                self._set_attrs(st, temp, fd=fout)
                queued = True
            finally:
                os.close(fout)
                if not queued:  # an error, a cancel or a stop: the partial copy goes, the old one stays
                    os.unlink(temp)
        finally:
            os.close(fin)
        self.batch.add_file(Deferred(lambda: self._rename(temp, dst, shown, tag), temp, shown, src), st.st_size)

    def _rename(self, temp: bytes, dst: bytes, shown: bytes, tag: str) -> None:
        try:
            os.rename(temp, dst)
        except OSError:
            os.unlink(temp)  # the old copy stays; the error is logged by the batch's caller
            raise
        self.reporter.log_path(tag, shown)

    def _copy_data(self, fin: int, fout: int, st: os.stat_result) -> None:
        size = st.st_size
        self._file_progress = 0
        if st.st_blocks * 512 < size:  # sparse: only the data segments, then the size (a trailing hole)
            for start, end in _data_segments(fin, size):
                if self._copy_range(fin, fout, start, end) < end:
                    break
            os.ftruncate(fout, size)
        elif self._copy_range(fin, fout, 0, size) < size:  # the file shrank while we copied
            os.ftruncate(fout, size)  # the size the scan saw: the next run copies it again
        self.reporter.advance(nbytes=size - self._file_progress)  # holes count as done: progress is by size

    def _copy_range(self, fin: int, fout: int, offset: int, end: int) -> int:
        """Copy ``[offset, end)``; returns where it stopped (``end`` unless the file shrank)."""
        reported = offset
        while offset < end:
            count = min(self._chunk, end - offset)
            if self.throttle is not None:
                self.throttle.take(count, self.reporter.checkpoint)
            copied = _copy_chunk(fin, fout, offset, count, self._copy_state)
            if copied == 0:
                break
            offset += copied
            if offset - reported >= self._report_every:  # a large file: progress and cancel as it is copied
                self._file_progress += offset - reported
                self.reporter.advance(nbytes=offset - reported)
                reported = offset
                self.reporter.checkpoint()
        return offset

    def _copy_link(self, src: bytes, dst: bytes) -> None:
        target = os.readlink(src)
        st = os.lstat(src)
        temp, _ = self._create_temp(dst, lambda path: os.symlink(target, path))
        try:
            self._set_attrs(st, temp)
            os.rename(temp, dst)
        except BaseException:
            os.unlink(temp)
            raise

    def _set_attrs(self, st: os.stat_result, path: bytes, fd: int | None = None) -> None:
        """Owner (as root), permissions and times of ``st`` on ``path`` (a link itself, never its target).

        The owner comes first: chown clears set-user-ID bits, chmod puts them back.
        """
        target = fd if fd is not None else path
        is_link = stat.S_ISLNK(st.st_mode)
        if self.owners:
            os.chown(target, st.st_uid, st.st_gid, follow_symlinks=fd is not None or not is_link)
        if not is_link:  # Linux has no permissions on links
            os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=fd is not None or not is_link)


def _make_parent_writable(path: bytes) -> bool:
    parent = os.path.dirname(path)
    mode = stat.S_IMODE(os.lstat(parent).st_mode)
    if mode & stat.S_IRWXU == stat.S_IRWXU:
        return False
    os.chmod(parent, mode | stat.S_IRWXU)
    return True


def _remove(path: bytes) -> None:
    """Remove a file, link or directory tree from the mirror (read-only directories included)."""
    if os.path.isdir(path) and not os.path.islink(path):
        def make_writable_and_retry(func, failed, _exc_info):
            parent = os.path.dirname(failed)
            os.chmod(parent, stat.S_IMODE(os.lstat(parent).st_mode) | stat.S_IRWXU)
            func(failed)

        shutil.rmtree(path, onerror=make_writable_and_retry)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
