"""Storage explorer (seed 001 §3.2): mounts and directory listings, metadata only. Read-only."""

from __future__ import annotations

import os
from datetime import datetime

from flask import jsonify, render_template, request
from flask_babel import gettext
from werkzeug.exceptions import BadRequest

from .. import pathpolicy
from ..auth.roles import VIEWER, requires
from ..errors import N_
from ..httpguard import query_int
from ..paths import display, path_from_token, path_token
from . import bp
from .listing import ExplorerError, PathNotAllowed, list_dir
from .mounts import SYSTEM, mount_for, read_mounts


def _requested_path() -> str:
    """``?p=<token>`` carries exact bytes; ``?path=`` is the readable form for text paths. The path policy
    decides whether it may be listed (browse roots, never StageBackup's own data)."""
    policy = pathpolicy.current()
    if "p" in request.args:
        try:
            path = path_from_token(request.args["p"])
        except ValueError:
            raise ExplorerError(N_("the path parameter is damaged")) from None
    else:
        path = request.args.get("path") or pathpolicy.browse_start(policy)
    if "\0" in path or not os.path.isabs(path):
        raise ExplorerError(N_("an absolute path is needed"))
    try:
        pathpolicy.check_browse(path, policy)
    except pathpolicy.PathRefused as exc:
        raise PathNotAllowed(exc.template, **exc.values) from None
    return path


def _browsable(path: str | None) -> bool:
    if path is None:
        return False
    try:
        pathpolicy.check_browse(path, pathpolicy.current())
    except pathpolicy.PathRefused:
        return False
    return True


def _paging() -> tuple[int, int]:
    try:
        return query_int("offset", 0), query_int("limit", 200)
    except BadRequest:
        raise ExplorerError(N_("offset and limit must be whole numbers (0 or more)")) from None


def _mount_dict(mount) -> dict:
    return {"path": display(mount.path), "token": path_token(mount.path), "device": display(mount.device),
            "fstype": mount.fstype, "kind": mount.kind, "read_only": mount.read_only}


@bp.errorhandler(ExplorerError)
def _explorer_error(exc: ExplorerError):
    if request.path.startswith("/api/"):
        return jsonify({"error": str(exc)}), exc.status
    return render_template("explorer/index.html", error=exc.translate(gettext), listing=None, mounts=[], crumbs=[],
                           current=None), exc.status


@bp.get("/api/explorer/mounts")
@requires(VIEWER)
def mounts_api():
    show_all = request.args.get("all") == "1"
    mounts = [m for m in read_mounts() if (show_all or m.kind != SYSTEM) and _browsable(m.path)]
    return jsonify({"mounts": [_mount_dict(m) for m in mounts]})


@bp.get("/api/explorer/list")
@requires(VIEWER)
def list_api():
    offset, limit = _paging()
    listing = list_dir(_requested_path(), offset=offset, limit=limit)
    return jsonify({
        "path": display(listing.path), "token": path_token(listing.path), "total": listing.total,
        "offset": listing.offset,
        "parent": path_token(listing.parent) if _browsable(listing.parent) else None,
        "items": [
            {"name": display(i.name), "token": path_token(i.path), "kind": i.kind, "size": i.size,
             "mtime": i.mtime, "mode": i.mode, "link_target": display(i.link_target) if i.link_target else None}
            for i in listing.items
        ],
    })


def _fmt_time(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # mtimes far outside the calendar exist
        return str(timestamp)


def _crumbs(path: str) -> list[tuple[str, str]]:
    crumbs, current = [], path
    while _browsable(current):
        crumbs.append((display(os.path.basename(current) or "/"), path_token(current)))
        if current == "/":
            break
        current = os.path.dirname(current)
    return list(reversed(crumbs))


@bp.get("/explorer")
@requires(VIEWER)
def index():
    offset, limit = _paging()
    listing = list_dir(_requested_path(), offset=offset, limit=limit)
    mounts = read_mounts()
    return render_template(
        "explorer/index.html", listing=listing, crumbs=_crumbs(listing.path), error=None,
        mounts=[_mount_dict(m) for m in mounts if m.kind != SYSTEM and _browsable(m.path)],
        current=mount_for(listing.path, mounts), display=display, path_token=path_token, limit=limit,
        fmt_time=_fmt_time,
    )
