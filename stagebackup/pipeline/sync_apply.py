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
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import DestinationError
from ..paths import display
from . import mirror_ops, sync_copier
from . import sync_plan as plan_ops
from .durable import Batch, Deferred
from .report import Reporter
from .sync_copier import CheckedFolders
from .sync_plan import TEMP_PREFIX, Root
from .throttle import ReadThrottle

CHUNK_BYTES = 64 << 20  # between two cancel checks inside one large file
FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
# A run of these records is shared with the helper process; any other record ends the run.
SHAREABLE = frozenset({plan_ops.NEW_FILE, plan_ops.CHANGED_FILE, plan_ops.MKDIR, plan_ops.DIR_ATTRS, plan_ops.LINK})
WINDOW = 512  # records in one run at most: the helper copies at most half of them at once
HELPER_MIN_FILES = 64  # fewer files in a run are not worth a request (and a small sync never starts the helper)


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


def _open_source(sources: CheckedFolders, path: bytes) -> int:
    """Open a source file for reading (the seam tests use to make a file unreadable)."""
    return sources.open(path)


_copy_chunk = sync_copier.copy_chunk  # a module name of its own: tests and the fault seams wrap it


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
        # Below the roots nothing is reached through a link: sources read, the mirror changed (sync_copier).
        self.sources = CheckedFolders()
        self.mirror = CheckedFolders(sync_copier.REPLACED_MIRROR)
        # Small files are shared with a helper process (``sync_copier``), unless every read must be paced here.
        self.helper = sync_copier.CopyHelper() if throttle is None else None

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
        finally:
            self.sources.close()
            self.mirror.close()
            if self.helper is not None:
                self.helper.close()

    def _apply(self, records) -> None:
        if self.helper is None:
            for record in records:
                self._apply_record(record)
            return
        window: list = []
        for record in records:
            if record[0] not in SHAREABLE:
                self._apply_shared(window)
                window = []
                self._apply_record(record)
                continue
            window.append(record)
            if len(window) == WINDOW:
                self._apply_shared(window)
                window = []
        self._apply_shared(window)

    def _apply_shared(self, window: list) -> None:
        """A run of copies, links and folders; the helper copies the files of its second half meanwhile.

        Its folders are made first (the helper writes into them); the rest keeps the plan's order: a
        folder's metadata, queued after the renames before it, comes after the helper's files too."""
        files = [i for i, record in enumerate(window) if record[0] in (plan_ops.NEW_FILE, plan_ops.CHANGED_FILE)]
        if len(files) < HELPER_MIN_FILES or self.helper.broken:
            for record in window:
                self._apply_record(record)
            return
        for record in window:
            if record[0] == plan_ops.MKDIR:
                self._apply_record(record)
        half = len(files) // 2  # measured: a larger share for the helper only made the job wait for it
        split = files[half]
        handed = {}  # plan index -> (source, mirror path, shown path, temporary name)
        for i in files[half:]:
            src, dst, shown = self._paths(window[i])
            handed[i] = (src, dst, shown, self._temp_name(dst))
        temps = [paths[3] for paths in handed.values()]
        if not self.helper.send([(paths[0], paths[3]) for paths in handed.values()]):
            handed, temps = {}, []
        try:
            for record in window[:split]:
                if record[0] != plan_ops.MKDIR:
                    self._apply_record(record)
            sizes = dict(zip(handed, self.helper.receive(temps) if temps else [], strict=True))
        except BaseException:
            self.helper.abandon(temps)  # a cancel or a fatal error: the helper's copies are not kept
            raise
        if self.helper.broken:
            self.reporter.log("INFO", "the copy helper process stopped; the job copies on alone")
        unqueued = {i: handed[i] for i, size in sizes.items() if size is not None}
        try:
            for i, record in enumerate(window[split:], split):
                if i in unqueued:
                    self._copied_by_helper(record[0], *unqueued.pop(i), sizes[i])
                elif record[0] != plan_ops.MKDIR:
                    self._apply_record(record)
        except BaseException:
            self.helper.abandon([paths[3] for paths in unqueued.values()])  # not in the batch: nobody else would
            raise

    def _copied_by_helper(self, op: bytes, src: bytes, dst: bytes, shown: bytes, temp: bytes, size: int) -> None:
        tag = "ADD" if op == plan_ops.NEW_FILE else "SYNC"
        self.reporter.advance(nbytes=size)
        self.batch.add_file(Deferred(lambda: self._rename(temp, dst, shown, tag), temp, shown, src), size)
        self.reporter.advance(files=1, current=src)

    def _paths(self, record) -> tuple[bytes, bytes, bytes]:
        """(source, mirror path, the mirror's path as the log shows it) of a plan record; the source by its real
        path, as ``CheckedFolders`` reads it (the mirror's is real too: ``sync.plan_roots``)."""
        _, index, _, rel = record
        root = self.roots[index]
        if not rel:
            return root.real, root.dest, root.name
        return root.real + b"/" + rel, root.dest + b"/" + rel, root.name + b"/" + rel

    def _apply_record(self, record) -> None:
        op, _, number, rel = record
        self.reporter.checkpoint()
        src, dst, shown = self._paths(record)
        try:
            try:
                self._one(op, number, src, dst, shown, is_root=not rel)
            except PermissionError:
                if self.owners or not mirror_ops.make_parent_writable(self.mirror, dst):
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
            target = self._copy_link(src, dst)
            reporter.log_path("SYNC" if number else "ADD", shown, f"-> {display(target)}")
            reporter.advance(current=src)  # a link: the job's file count counts regular files
        elif op == plan_ops.ATTRS:
            self._set_attrs(self.sources.lstat(src), dst)
            reporter.log_path("SYNC", shown, "permissions, owner or time")
        elif op == plan_ops.MKDIR:
            if is_root:
                os.makedirs(os.path.dirname(dst), exist_ok=True)  # the operator's destination
            mirror_ops.make_dir(self.mirror, dst)
        elif op == plan_ops.DIR_ATTRS:
            st = os.stat(src) if is_root else self.sources.lstat(src)  # a root is followed, as in scan
            if not self.batch.add_after_files(lambda: self._set_attrs(st, dst)):
                self._set_attrs(st, dst)
        elif op == plan_ops.DELETE:
            mirror_ops.remove(self.mirror, dst, owners=self.owners)
            reporter.log_path("SYNC", shown, "removed" + (f" ({number} files)" if number > 1 else ""))
        elif op == plan_ops.REPLACE:
            mirror_ops.remove(self.mirror, dst, owners=self.owners)
            reporter.log_path("SYNC", shown, "replaced by a directory")
        elif op == plan_ops.CLEAN_TEMP:
            mirror_ops.remove(self.mirror, dst, owners=self.owners)
            reporter.log_path("INFO", shown, "removed a partial file left by an interrupted sync")
        else:
            raise ValueError(f"unknown sync plan operation {op!r}")

    def clean_top_level_temps(self, is_temp_name) -> None:
        top = os.fsencode(os.path.realpath(self.dest))
        try:
            names = os.listdir(top)
        except FileNotFoundError:
            return
        for name in names:
            if is_temp_name(name):
                mirror_ops.remove(self.mirror, top + b"/" + name, owners=self.owners)
                self.reporter.log_path("INFO", name, "removed a partial file left by an interrupted sync")

    # -- files and links -------------------------------------------------------------------------
    def _temp_name(self, dst: bytes) -> bytes:
        return b"%s/%s%d-%d.tmp" % (dst[:dst.rindex(b"/")], TEMP_PREFIX, self.job_id, next(self._names))

    def _create_temp(self, dst: bytes, create):
        """A new temporary name beside ``dst``, created by ``create(path)``; returns (path, its result)."""
        while True:
            temp = self._temp_name(dst)
            try:
                return temp, create(temp)
            except FileExistsError:  # left by an earlier attempt of this job: removed by the next scan
                continue

    def _copy_file(self, src: bytes, dst: bytes, shown: bytes, tag: str) -> None:
        """Copy one file to a temporary name and queue its rename (logged as ``tag`` when it happens); an
        [ERROR] line instead when the source cannot be read."""
        try:
            fin = _open_source(self.sources, src)
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
            temp, fout = self._create_temp(dst, self.mirror.create)
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
                    self.mirror.unlink(temp)
        finally:
            os.close(fin)
        self.batch.add_file(Deferred(lambda: self._rename(temp, dst, shown, tag), temp, shown, src), st.st_size)

    def _rename(self, temp: bytes, dst: bytes, shown: bytes, tag: str) -> None:
        mirror_ops.rename_over(self.mirror, temp, dst)  # on failure the old copy stays, the batch logs the error
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

    def _copy_link(self, src: bytes, dst: bytes) -> bytes:
        """The link ``src`` made at ``dst``; returns its target."""
        target = self.sources.readlink(src)
        st = self.sources.lstat(src)
        temp, _ = self._create_temp(dst, lambda path: mirror_ops.create_link(self.mirror, target, path))
        try:
            self._set_attrs(st, temp)
        except BaseException:
            self.mirror.unlink(temp)
            raise
        mirror_ops.rename_over(self.mirror, temp, dst)
        return target

    def _set_attrs(self, st: os.stat_result, path: bytes, fd: int | None = None) -> None:
        """Owner (as root), permissions and times of ``st`` on the mirror's ``path`` (a link itself, never its
        target), or on ``fd``, the file just written there."""
        if fd is not None:
            sync_copier.set_attrs(st, fd, owners=self.owners)
        else:
            mirror_ops.set_attrs(st, self.mirror, path, owners=self.owners)
