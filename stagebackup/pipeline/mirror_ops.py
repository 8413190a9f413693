"""Changes to a sync's mirror (new links and folders, renames, removals, attributes; new files are
``CheckedFolders.create``), each made in a checked folder (``sync_copier.CheckedFolders``).

A user who owns a folder in a source owns its copy in the mirror (owners are kept) and may replace it by a link
between the plan and the copy; every change here is made *in* the folder's descriptor, checked to be where the
plan saw it, with the ``*at`` system calls, so nothing outside the mirror is written, renamed, chmod'ed,
chown'ed or removed. Paths are real (``sync.plan_roots`` resolves the destination once).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat

from . import sync_copier
from .sync_copier import CAN_CHECK, WHERE_OPENED, CheckedFolders


def create_link(mirror: CheckedFolders, target: bytes, path: bytes) -> None:
    folder, name = mirror.locate(path)
    os.symlink(target, name, dir_fd=folder)


def make_dir(mirror: CheckedFolders, path: bytes) -> None:
    """A directory, writable for us until its own metadata is set after its contents; one already there is kept,
    anything else under its name is an error."""
    folder, name = mirror.locate(path)
    try:
        os.mkdir(name, 0o700, dir_fd=folder)
    except FileExistsError:
        if not stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
            raise


def rename_over(mirror: CheckedFolders, temp: bytes, path: bytes) -> None:
    """``temp`` renamed over ``path``, its neighbour; on failure ``temp`` goes and the old ``path`` stays."""
    folder, name = mirror.locate(path)
    temp_name = temp[temp.rindex(b"/") + 1:]
    try:
        os.rename(temp_name, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        os.unlink(temp_name, dir_fd=folder)
        raise


def remove(mirror: CheckedFolders, path: bytes, *, owners: bool) -> None:
    """Remove a file, link or directory tree (read-only directories included); ``shutil.rmtree`` with
    ``dir_fd`` never follows a link below it either. ``owners``: we are root, and permissions do not stop us."""
    folder, name = mirror.locate(path)
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
        return
    if not owners:
        _make_tree_writable(folder, name, st)
    shutil.rmtree(name, dir_fd=folder)


def _make_tree_writable(folder: int, name: bytes, st: os.stat_result) -> None:
    """u+rwx on a directory and every directory below it (top-down: each before it is listed)."""
    if st.st_mode & stat.S_IRWXU != stat.S_IRWXU:
        os.chmod(name, stat.S_IMODE(st.st_mode) | stat.S_IRWXU, dir_fd=folder)
    for _, dirnames, _, dir_fd in os.fwalk(name, dir_fd=folder):
        for sub in dirnames:
            mode = os.stat(sub, dir_fd=dir_fd, follow_symlinks=False).st_mode
            if mode & stat.S_IRWXU != stat.S_IRWXU:
                os.chmod(sub, stat.S_IMODE(mode) | stat.S_IRWXU, dir_fd=dir_fd)


def make_parent_writable(mirror: CheckedFolders, path: bytes) -> bool:
    """u+rwx on ``path``'s folder (a read-only folder mirrored from the source, for a job that is not root);
    False if it already was. Its own permissions are set again after its contents."""
    folder, name = mirror.locate(path[:path.rindex(b"/")])
    mode = stat.S_IMODE(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)  # a link: 0o777, left alone
    if mode & stat.S_IRWXU == stat.S_IRWXU:
        return False
    os.chmod(name, mode | stat.S_IRWXU, dir_fd=folder)
    return True


def set_attrs(st: os.stat_result, folders: CheckedFolders, path: bytes, *, owners: bool) -> None:
    """``sync_copier.set_attrs`` on the entry ``path``: a link gets the attributes of the link ``st`` describes,
    never those of a link's target (there is no ``fchmodat`` that does not follow a link, so the entry is opened
    ``O_PATH | O_NOFOLLOW`` and changed through its ``/proc`` name, which is the inode)."""
    fd, name = folders.locate(path)
    if stat.S_ISLNK(st.st_mode):
        if owners:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd, follow_symlinks=False)
        return
    entry = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    try:
        if stat.S_ISLNK(os.fstat(entry).st_mode):
            raise OSError(errno.ELOOP, "is a link in the mirror now, not what the plan saw: not changed")
        sync_copier.set_attrs(st, WHERE_OPENED % entry if CAN_CHECK else path, owners=owners)
    finally:
        os.close(entry)
