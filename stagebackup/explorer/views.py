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
from .listing import SORTS, ExplorerError, list_dir
from .mounts import mount_for, read_mounts
from .present import browsable, checked, listing_dict, offered_mounts


def requested_path() -> str:
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
    return checked(path)


def paging() -> tuple[int, int]:
    try:
        return query_int("offset", 0), query_int("limit", 200)
    except BadRequest:
        raise ExplorerError(N_("offset and limit must be whole numbers (0 or more)")) from None


@bp.errorhandler(ExplorerError)
def _explorer_error(exc: ExplorerError):
    if request.path.startswith("/api/"):
        return jsonify({"error": str(exc)}), exc.status
    if (request.endpoint or "").startswith("explorer.picker"):
        return render_template("explorer/_picker_error.html", error=exc.translate(gettext)), exc.status
    return render_template("explorer/index.html", error=exc.translate(gettext), listing=None, mounts=[], crumbs=[],
                           current=None), exc.status


@bp.get("/api/explorer/mounts")
@requires(VIEWER)
def mounts_api():
    return jsonify({"mounts": offered_mounts(request.args.get("all") == "1")})


@bp.get("/api/explorer/list")
@requires(VIEWER)
def list_api():
    offset, limit = paging()
    listing = list_dir(requested_path(), offset=offset, limit=limit, sort=request.args.get("sort") or "name")
    return jsonify(listing_dict(listing))


def _fmt_time(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):  # mtimes far outside the calendar exist
        return str(timestamp)


def _crumbs(path: str) -> list[tuple[str, str]]:
    crumbs, current = [], path
    while browsable(current):
        crumbs.append((display(os.path.basename(current) or "/"), path_token(current)))
        if current == "/":
            break
        current = os.path.dirname(current)
    return list(reversed(crumbs))


@bp.get("/explorer")
@requires(VIEWER)
def index():
    offset, limit = paging()
    listing = list_dir(requested_path(), offset=offset, limit=limit, sort=request.args.get("sort") or "name")
    show_system = request.args.get("all") == "1"
    return render_template(
        "explorer/index.html", listing=listing, crumbs=_crumbs(listing.path), error=None,
        mounts=offered_mounts(show_system), show_system=show_system,
        current=mount_for(listing.path, read_mounts()), display=display, path_token=path_token, limit=limit,
        fmt_time=_fmt_time, sorts=SORTS,
    )
