"""Writing one restored regular file: its data (holes kept), then mode, owner and mtime, then its name.

A file's data is written into an unnamed file (``O_TMPFILE``) that gets its name only once complete, so a
restore killed mid-file (SIGKILL, power loss) leaves nothing under the member's name, never a partial file
that a rerun would then skip as "already exists". Where the file system has no unnamed files it is created
under its name with ``O_EXCL | O_NOFOLLOW``. Separate from ``extract.py``, which decides where each member
goes (names, conflicts, links, folders); this module only fills and commits a file once placed.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from ..errors import N_, StageBackupError
from .member_names import Parts, member_text

if TYPE_CHECKING:
    from .extract import Owner, SafeExtractor

_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_UNNAMED_FILE_FLAGS = os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC  # linkable: no O_EXCL
_CAN_NAME_UNNAMED = os.path.isdir("/proc/self/fd")  # how an unnamed file gets its name (linkat)
HOLE_MIN_BYTES = 64 * 1024  # all-zero chunks at least this big become holes (sparse files stay sparse)
_ZERO_BLOCK = bytes(HOLE_MIN_BYTES)


class MemberOutgrewCatalog(StageBackupError):
    """An archive gives more data for a member than the catalog lists: a bomb, or a damaged or foreign archive."""

    template = N_("member %(member)s is larger than its catalogued size (the catalog lists %(catalogued)s bytes, "
                  "the archive gives at least %(found)s): the archive is damaged or not this backup's; restore "
                  "stopped")
    params = ("member", "catalogued", "found")


def new_file(dir_fd: int, name: bytes) -> tuple[int, bool]:
    """``(fd, unnamed)``: a new file to be called ``name`` in ``dir_fd`` (FileExistsError if the name is taken).

    Unnamed (``O_TMPFILE``) where the file system allows it: ``FileSink.close`` links it under ``name`` once its
    data, mode and mtime are complete. Elsewhere (NFS, some FUSE file systems) it is created under ``name``."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(name))
    if _CAN_NAME_UNNAMED:
        try:
            return os.open(".", _UNNAMED_FILE_FLAGS, 0o600, dir_fd=dir_fd), True
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    return os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd), False


class FileSink:
    """The data of one restored regular file; ``close()`` applies mode and mtime and commits the name."""

    def __init__(self, extractor: SafeExtractor, parts: Parts, fd: int, dir_fd: int, temp: bytes | None,
                 final: bytes, mode: int, mtime_ns: int, owner: Owner | None = None, limit: int | None = None,
                 *, unnamed: bool = False):
        self._ex, self.parts, self.fd, self._dir_fd, self._unnamed = extractor, parts, fd, dir_fd, unnamed
        self._temp, self._final, self._mode, self._mtime_ns = temp, final, mode, mtime_ns
        self._owner, self._limit = owner, limit
        self.size = 0
        self._hole_at_end = False

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        length = len(view)
        if self._limit is not None and self.size + length > self._limit:
            raise MemberOutgrewCatalog(member_text(self.parts), self._limit, self.size + length)
        if length < HOLE_MIN_BYTES:
            self._write_all(view)
        else:
            # Aligned all-zero blocks become holes, so sparse files (disk images) stay sparse.
            start = 0
            for offset in range(0, length - HOLE_MIN_BYTES + 1, HOLE_MIN_BYTES):
                if view[offset:offset + HOLE_MIN_BYTES] == _ZERO_BLOCK:
                    self._write_all(view[start:offset])
                    os.lseek(self.fd, HOLE_MIN_BYTES, os.SEEK_CUR)
                    start = offset + HOLE_MIN_BYTES
                    self._hole_at_end = True
            self._write_all(view[start:])
        self.size += length
        self._ex.stats.bytes += length
        return length

    def _write_all(self, view: memoryview) -> None:
        if view:
            self._hole_at_end = False
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> None:
        if self.fd < 0:
            return  # aborted: nothing to commit
        try:
            if self._hole_at_end:
                os.ftruncate(self.fd, self.size)
            os.fchmod(self.fd, self._ex.owned_mode(self.fd, self.parts, self._mode, self._owner))
            os.utime(self.fd, ns=(self._mtime_ns, self._mtime_ns))
            if self._unnamed:  # complete: now it gets its name (EEXIST if one appeared meanwhile)
                os.link(f"/proc/self/fd/{self.fd}", self._temp or self._final, dst_dir_fd=self._dir_fd)
        finally:
            os.close(self.fd)
        if self._temp is not None:
            os.rename(self._temp, self._final, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        self._ex.file_restored(self.parts, self._final)

    def abort(self) -> None:
        """The data could not be read completely: remove what was written."""
        fd, self.fd = self.fd, -1
        os.close(fd)
        if self._unnamed:
            return  # it never had a name: closing it freed it
        try:
            os.unlink(self._temp or self._final, dir_fd=self._dir_fd)
        except OSError:
            pass
