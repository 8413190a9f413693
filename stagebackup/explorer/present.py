"""What the explorer's page, picker, API and ``flask explorer`` show: mounts with their space and
listings as plain data, inside the path policy's browse limits."""

from __future__ import annotations

from .. import pathpolicy
from ..paths import display, path_token
from .listing import Listing, PathNotAllowed
from .mounts import Mount, read_mounts, space, visible


def checked(path: str) -> str:
    """``path`` when the path policy lets the explorer list it (browse roots, never StageBackup's own data)."""
    try:
        pathpolicy.check_browse(path, pathpolicy.current())
    except pathpolicy.PathRefused as exc:
        raise PathNotAllowed(exc.template, **exc.values) from None
    return path


def browsable(path: str | None) -> bool:
    if path is None:
        return False
    try:
        pathpolicy.check_browse(path, pathpolicy.current())
    except pathpolicy.PathRefused:
        return False
    return True


def mount_dict(mount: Mount) -> dict:
    """A mount as shown, with its space asked from ``statvfs``."""
    room = space(mount.path)
    return {"path": display(mount.path), "token": path_token(mount.path), "device": display(mount.source),
            "fstype": mount.fstype, "kind": mount.kind, "read_only": mount.read_only, "bind": mount.bind,
            "root": display(mount.root), "total_bytes": room.total if room else None,
            "free_bytes": room.free if room else None, "used_percent": room.used_percent if room else None}


def offered_mounts(show_system: bool) -> list[dict]:
    """The mounts the explorer offers (system ones only when asked), each with its space."""
    return [mount_dict(m) for m in visible(read_mounts(), show_system=show_system) if browsable(m.path)]


def listing_dict(listing: Listing) -> dict:
    return {
        "path": display(listing.path), "token": path_token(listing.path), "total": listing.total,
        "offset": listing.offset, "sort": listing.sort,
        "parent": path_token(listing.parent) if browsable(listing.parent) else None,
        "items": [
            {"name": display(i.name), "token": path_token(i.path), "kind": i.kind, "size": i.size,
             "mtime": i.mtime, "mode": i.mode, "link_target": display(i.link_target) if i.link_target else None}
            for i in listing.items
        ],
    }
