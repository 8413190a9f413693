"""The sync's helper process: it copies small files while the job's thread copies others.

Why a process: per file the copy is about ten system calls of a few microseconds each, and one Python thread
spends as long between them as in them; a second thread only queues for the GIL (3.0 s against 1.8 s for the
bare loop). A second process makes them on the other core, as rsync's receiver does: the bare copy loop of the
50,000-file corpus took 1.7–1.8 s in two processes against 2.4–3.5 s in one (docs/performance.md).

The helper does only the plain case: a regular, non-sparse file of at most ``SMALL_BYTES``, copied whole to
the temporary name the job chose, with its owner (as root), permissions and times, both files closed. For
anything else — the source gone, replaced by a link or a FIFO, unreadable, grown large or sparse, changed size
while copied, the temporary name taken, the disk full — it answers "not done" and leaves nothing behind, and
the job copies that file itself, where every error is handled and logged as for any other file. The rename to
the final name stays with the job and waits, as for every copy, for the batch's ``syncfs`` (``durable``):
the helper closes each file before it answers, and ``syncfs`` flushes the whole file system, whoever wrote.

It imports only the standard library and runs as ``python -I sync_copier.py``; that is why ``CheckedFolders``,
the way the job, the helper and the archive writers reach sources and the mirror, lives here.
Protocol, stdin → stdout: a request is ``COUNT LENGTH\\n`` and LENGTH bytes of COUNT records
``SRC\\0TEMP\\0``; the answer is one line per record, in order: the bytes copied, or ``-`` when not done. After
``BATCH_BYTES`` copied in one request its other records are answered ``-`` (the job's cancel and progress wait
for at most that much). End of stdin: exit.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import sys

SMALL_BYTES = 1 << 20
BATCH_BYTES = 64 << 20
NO_COPY_FILE_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF}
NOT_DONE = b"-"


# -- reaching sources and the mirror, shared with the job (sync_apply, and source.py for the archive writers) ---
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO swapped in never blocks
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FOLDER_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC  # search permission is enough
WHERE_OPENED = b"/proc/self/fd/%d"
CAN_CHECK = os.path.isdir("/proc/self/fd")  # without /proc (a bare chroot) the folder cannot be checked
# ELOOP/ENOTDIR: O_DIRECTORY | O_NOFOLLOW on a link (or a file) in the folder's place; a readlink that differs:
# a folder above it is a link now.
REPLACED_SOURCE = "a folder on its path was replaced since the scan (a link would lead outside the source): not read"
REPLACED_MIRROR = ("a folder of the mirror on its path was replaced since the plan (a link would lead outside the "
                   "mirror): not changed")


class CheckedFolders:
    """Reaches entries through their folder, opened once and checked, never through a link.

    Why: a sync's scan, plan and copy are apart in time. Opened by its full path, ``dir/file`` is reached
    wherever ``dir`` points *now*. A user who owns a folder in a source could replace it by a link to ``/etc``
    after the scan and have ``/etc/shadow`` read as their own ``dir/shadow``; they own that folder's copy in
    the mirror too (owners are kept), and a link there would have the copy write, chmod, chown or delete in
    ``/etc``. ``O_NOFOLLOW`` guards only the last name. So the folder is opened (``O_PATH``), the kernel says
    where that descriptor really is, and that must be the folder asked for; the entry is then opened, stat'ed,
    created, renamed or removed *in* that descriptor, never following a link (the ``*at`` calls). Paths must be
    real (no link above them: the operator's roots are resolved once, ``source.real_roots``). Entries come
    folder by folder (the scan's order), so a folder is opened once for all its entries and an entry costs one
    ``openat``, less than a lookup of its full path.
    """

    def __init__(self, replaced: str = REPLACED_SOURCE):
        self.replaced = replaced  # the error when a folder is not where it was
        self._path: bytes | None = None
        self._fd = -1

    def locate(self, path: bytes) -> tuple[int, bytes]:
        """(the checked folder's descriptor, the entry's name in it); OSError if the folder cannot be used."""
        folder, _, name = path.rpartition(b"/")
        folder = folder or b"/"
        if folder != self._path:
            self._enter(folder)
        return self._fd, name

    def open(self, path: bytes, flags: int = READ_FLAGS, mode: int = 0o600) -> int:
        fd, name = self.locate(path)
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=fd)

    def create(self, path: bytes) -> int:
        """A new file (``O_EXCL``, mode 0600), open for writing."""
        return self.open(path, CREATE_FLAGS)

    def lstat(self, path: bytes) -> os.stat_result:
        fd, name = self.locate(path)
        return os.stat(name, dir_fd=fd, follow_symlinks=False)

    def readlink(self, path: bytes) -> bytes:
        fd, name = self.locate(path)
        return os.readlink(name, dir_fd=fd)

    def unlink(self, path: bytes) -> None:
        fd, name = self.locate(path)
        os.unlink(name, dir_fd=fd)

    def _enter(self, folder: bytes) -> None:
        self.close()
        try:
            fd = os.open(folder, FOLDER_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise OSError(exc.errno, self.replaced) from exc
            raise
        try:
            where = os.readlink(WHERE_OPENED % fd) if CAN_CHECK else folder
        except BaseException:
            os.close(fd)
            raise
        if where != folder:
            os.close(fd)
            if where == folder + b" (deleted)":
                raise FileNotFoundError(errno.ENOENT, "its folder was removed")
            raise OSError(errno.ELOOP, self.replaced)
        self._path, self._fd = folder, fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._path, self._fd = None, -1


def copy_chunk(fin: int, fout: int, offset: int, count: int, state: dict) -> int:
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


def set_attrs(st: os.stat_result, target, *, owners: bool, follow: bool = True) -> None:
    """Owner (as root), permissions and times of ``st`` on ``target`` (a descriptor or a path; with
    ``follow=False`` a link itself, never its target). The owner comes first: chown clears set-user-ID bits,
    chmod puts them back."""
    is_link = stat.S_ISLNK(st.st_mode)
    if owners:
        os.chown(target, st.st_uid, st.st_gid, follow_symlinks=follow)
    if not is_link:  # Linux has no permissions on links
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=follow)


# -- the helper's side -----------------------------------------------------------------------------------------
def copy_small_file(src: bytes, temp: bytes, owners: bool, state: dict,
                    sources: CheckedFolders, mirror: CheckedFolders) -> int | None:
    """Copy ``src`` to the new file ``temp``; the size copied, or None (and no ``temp``) when not done."""
    try:
        fin = sources.open(src)
    except OSError:
        return None
    try:
        st = os.fstat(fin)
        size = st.st_size
        if not stat.S_ISREG(st.st_mode) or size > SMALL_BYTES or st.st_blocks * 512 < size:
            return None
        fout = mirror.create(temp)
        done = False
        try:
            offset = 0
            while offset < size and (copied := copy_chunk(fin, fout, offset, size - offset, state)):
                offset += copied
            if offset == size:  # else it shrank: the job copies it (and says so)
                set_attrs(st, fout, owners=owners)
                done = True
        finally:
            os.close(fout)
            if not done:
                mirror.unlink(temp)
        return size if done else None
    except OSError:
        return None
    finally:
        os.close(fin)


def _read_request(stdin) -> list[tuple[bytes, bytes]] | None:
    line = stdin.readline()
    if not line:
        return None
    count, length = map(int, line.split())
    data = stdin.read(length)
    fields = data.split(b"\0")
    if len(data) != length or len(fields) != 2 * count + 1 or fields[-1]:
        raise EOFError("a request ends in the middle")
    return list(zip(fields[0:-1:2], fields[1:-1:2], strict=True))


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    owners, state, sources, mirror = os.geteuid() == 0, {}, CheckedFolders(), CheckedFolders(REPLACED_MIRROR)
    while (request := _read_request(stdin)) is not None:
        copied = 0
        answers = []
        for src, temp in request:
            size = copy_small_file(src, temp, owners, state, sources, mirror) if copied < BATCH_BYTES else None
            copied += size or 0
            answers.append(NOT_DONE if size is None else b"%d" % size)
        stdout.write(b"\n".join(answers) + b"\n")
        stdout.flush()
    return 0


# -- the job's side --------------------------------------------------------------------------------------------
class CopyHelper:
    """The job's end of the helper: started on first use; once it fails, the job copies alone."""

    def __init__(self):
        self._child: subprocess.Popen | None = None
        self.broken = False
        self.copied = 0  # files the helper copied

    def send(self, pairs: list[tuple[bytes, bytes]]) -> bool:
        """Hand over (source, temporary name) pairs; False if the helper cannot take them."""
        if self.broken:
            return False
        try:
            if self._child is None:
                self._child = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            records = b"".join(b"%s\0%s\0" % pair for pair in pairs)
            self._child.stdin.write(b"%d %d\n" % (len(pairs), len(records)) + records)
            self._child.stdin.flush()
            return True
        except OSError:
            self.abandon([])
            return False

    def receive(self, temps: list[bytes]) -> list[int | None]:
        """The answers to the request of these temporary names: the size copied, or None where the job must
        copy the file itself (all of them if the helper died: what it wrote is then removed)."""
        try:
            answers = [self._child.stdout.readline().strip() for _ in temps]
            sizes = [None if answer == NOT_DONE else int(answer) for answer in answers]
        except (OSError, ValueError):  # an empty line: the helper is gone
            self.abandon(temps)
            return [None] * len(temps)
        self.copied += sum(size is not None for size in sizes)
        return sizes

    def abandon(self, temps: list[bytes]) -> None:
        """Stop the helper, in the middle of a request, and remove whatever of it was written."""
        self.broken = True
        if self._child is not None:
            self._child.kill()
            self.close()
        for temp in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    def close(self) -> None:
        if self._child is not None:
            with contextlib.suppress(OSError):  # a helper that was killed: nothing left to flush
                self._child.stdin.close()
            self._child.stdout.close()
            self._child.wait()
            self._child = None

if __name__ == "__main__":
    sys.exit(main())
