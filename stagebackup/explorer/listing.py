"""List a directory from metadata only: ``lstat`` of each entry, never a read of file contents.

On a network mount, opening a file may download it; a listing must cost one directory read and one
``lstat`` per entry, nothing more.
"""

from __future__ import annotations

import os
import stat
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


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _item(directory: bytes, entry: os.DirEntry) -> Item | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # removed while we listed
        return None
    target = None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.fsdecode(os.readlink(entry.path))
        except OSError:
            target = None
    return Item(os.fsdecode(entry.name), os.fsdecode(entry.path), _kind(st.st_mode), st.st_size, st.st_mtime,
                st.st_mode, target)


def list_dir(path: str, *, offset: int = 0, limit: int = 200) -> Listing:
    """Directories first, then by name (bytes order); ``offset``/``limit`` page through big folders."""
    if not path or "\0" in path or not os.path.isabs(path):
        raise ExplorerError(N_("an absolute path is needed"))
    path = os.path.normpath(path)
    limit = max(1, min(limit, PAGE_MAX))
    raw = os.fsencode(path)
    try:
        with os.scandir(raw) as entries:
            items = [item for entry in entries if (item := _item(raw, entry)) is not None]
    except FileNotFoundError:
        raise PathNotFound(display(path)) from None
    except PermissionError:
        raise PathForbidden(display(path)) from None
    except NotADirectoryError:
        raise ExplorerError(N_("%(path)s is not a directory"), path=display(path)) from None
    except OSError as exc:
        raise ExplorerError(N_("%(path)s: %(reason)s"), path=display(path), reason=exc.strerror) from None
    items.sort(key=lambda item: (item.kind != "dir", os.fsencode(item.name)))
    parent = os.path.dirname(path) if path != "/" else None
    return Listing(path, parent, items[offset:offset + limit], len(items), offset)
