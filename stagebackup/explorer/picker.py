"""The folder picker: a dialog over a form field (project sources and destination, restore target) with a
tree of folders that loads one level when it is opened. Same path policy and metadata-only reads as the
explorer; a folder is offered for "use" only when its path is text a form field can hold."""

from __future__ import annotations

import os

from flask import render_template, request

from .. import pathpolicy
from ..auth.roles import VIEWER, requires
from ..paths import display, path_token
from . import bp
from .listing import list_folders
from .mounts import SYSTEM, read_mounts, visible
from .present import browsable, mount_dict
from .views import paging, requested_path

PICKER_PAGE = 200


def _usable(path: str) -> bool:
    """A form field holds UTF-8 text: a name with other bytes can be browsed through, not chosen."""
    try:
        os.fsencode(path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _node(path: str, label: str | None = None) -> dict:
    return {"path": path, "shown": display(path), "label": label or display(os.path.basename(path) or path),
            "token": path_token(path), "usable": _usable(path)}


@bp.get("/explorer/picker")
@requires(VIEWER)
def picker():
    """The dialog's body: for a restore target the restore roots; else the browse roots when the server is
    confined to some, else the data mounts."""
    policy = pathpolicy.current()
    roots = policy.restore_roots if request.args.get("scope") == "restore" else policy.browse_roots
    if roots:
        tops = [{**_node(root, display(root)), "mount": None} for root in roots if browsable(root)]
    else:
        tops = [{**_node(m.path, display(m.path)), "mount": mount_dict(m)}
                for m in visible(read_mounts(), show_system=False) if browsable(m.path)]
    return render_template("explorer/_picker_body.html", tops=tops)


@bp.get("/explorer/picker/folders")
@requires(VIEWER)
def picker_folders():
    """One level of the tree: the sub-folders of ``p``, a page at a time (a "more" row fetches the next);
    the mount points of system file systems are left out."""
    path = requested_path()
    offset, _ = paging()
    folders, total = list_folders(path, offset=offset, limit=PICKER_PAGE)
    system = {m.path for m in read_mounts() if m.kind == SYSTEM}  # /proc, /sys, /dev, /run: nothing to pick
    shown = [_node(f) for f in folders if f not in system and browsable(f)]
    return render_template("explorer/_picker_level.html", folders=shown,
                           token=path_token(path), next_offset=offset + PICKER_PAGE if total > offset + PICKER_PAGE
                           else None)
