"""List a directory from metadata only: ``lstat`` of each entry, never a read of file contents.

On a network mount, opening a file may download it; a listing must cost one directory read and one
``lstat`` per entry, nothing more.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_OTHER, N_, StageBackupError
from ..paths import display

PAGE_MAX = 1000


class ExplorerError(StageBackupError):
    """A browse request that cannot be served."""

    template = None  # free-form: each raise site passes its N_ template
    status = 400
    exit_code = EXIT_BAD_INPUT


class PathNotFound(ExplorerError):
    template = N_("%(path)s does not exist")
    params = ("path",)
    status = 404
    exit_code = EXIT_NOT_FOUND


class PathNotAllowed(ExplorerError):
    """The guard rails refuse this folder (the path policy's own message)."""

    template = None  # free-form: the path policy's N_ template and values

    status = 403


class PathForbidden(ExplorerError):
    template = N_("%(path)s cannot be read: permission denied")
    params = ("path",)
    status = 403
    exit_code = EXIT_OTHER


@dataclass(frozen=True)
class Item:
    name: str  # surrogate-escaped, exact
    path: str
    kind: str  # dir | file | symlink | other
    size: int
    mtime: float
    mode: int
    link_target: str | None


@dataclass(frozen=True)
class Listing:
    path: str
    parent: str | None
    items: list[Item]
    total: int
    offset: int
    sort: str = "name"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


SORTS = ("name", "size", "mtime")


def _item(path: bytes, name: bytes) -> Item | None:
    """One ``lstat``: the entry's kind, size, mtime and mode; ``readlink`` for a link. Never an open."""
    full = os.path.join(path, name)
    try:
        st = os.lstat(full)
    except FileNotFoundError:  # removed while we listed
        return None
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.fsdecode(os.readlink(full))
        except OSError:
            target = None
    return Item(os.fsdecode(name), os.fsdecode(full), _kind(st.st_mode), st.st_size, st.st_mtime, st.st_mode, target)


def _names(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    """(folders, other entries), by name, from one streaming directory read: the folder bit comes from the
    directory entry's type (``d_type``), so no entry is stat'ed here. Two lists of bytes sort several times
    faster than one list of (kind, name) pairs."""
    folders: list[bytes] = []
    others: list[bytes] = []
    with os.scandir(raw) as entries:
        for entry in entries:
            (folders if _is_dir(entry) else others).append(entry.name)
    folders.sort()
    others.sort()
    return folders, others


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _sorted_items(raw: bytes, sort: str, offset: int, limit: int) -> tuple[list[Item], int]:
    """By name, only the page's entries are stat'ed; by size or mtime (largest, newest first) every entry
    must be. Folders come first either way."""
    folders, others = _names(raw)
    names = folders + others
    if sort == "name":
        page = [item for name in names[offset:offset + limit] if (item := _item(raw, name)) is not None]
        return page, len(names)
    items = [item for name in names if (item := _item(raw, name)) is not None]
    key = (lambda i: (i.kind != "dir", -i.size, os.fsencode(i.name))) if sort == "size" else \
        (lambda i: (i.kind != "dir", -i.mtime, os.fsencode(i.name)))
    items.sort(key=key)
    return items[offset:offset + limit], len(items)


def _checked(path: str) -> str:
    if not path or "\0" in path or not os.path.isabs(path):
        raise ExplorerError(N_("an absolute path is needed"))
    return os.path.normpath(path)


@contextmanager
def _reading(path: str):
    """A directory that cannot be read becomes the explorer's error for it."""
    try:
        yield
    except FileNotFoundError:
        raise PathNotFound(display(path)) from None
    except PermissionError:
        raise PathForbidden(display(path)) from None
    except NotADirectoryError:
        raise ExplorerError(N_("%(path)s is not a directory"), path=display(path)) from None
    except OSError as exc:
        raise ExplorerError(N_("%(path)s: %(reason)s"), path=display(path), reason=exc.strerror) from None


def _parent(path: str) -> str | None:
    return os.path.dirname(path) if path != "/" else None


def list_dir(path: str, *, offset: int = 0, limit: int = 200, sort: str = "name") -> Listing:
    """Folders first, then by name (bytes order), size or mtime; ``offset``/``limit`` page through big folders."""
    path = _checked(path)
    if sort not in SORTS:
        raise ExplorerError(N_("sort must be one of %(sorts)s"), sorts=", ".join(SORTS))
    with _reading(path):
        items, total = _sorted_items(os.fsencode(path), sort, offset, max(1, min(limit, PAGE_MAX)))
    return Listing(path, _parent(path), items, total, offset, sort)


def list_folders(path: str, *, offset: int = 0, limit: int = 200) -> tuple[list[str], int]:
    """The sub-folders of ``path`` by name, a page of them and how many there are: the folder picker's tree
    level, from one directory read and no ``stat`` at all."""
    path = _checked(path)
    raw = os.fsencode(path)
    with _reading(path):
        names = _names(raw)[0]
    page = names[offset:offset + max(1, min(limit, PAGE_MAX))]
    return [os.fsdecode(os.path.join(raw, name)) for name in page], len(names)
