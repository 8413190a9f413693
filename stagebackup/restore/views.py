"""Restore pages: pick a project and a finished backup, browse or search its catalog, restore or verify.

Views stay thin: parse the query string (paths travel as byte-exact tokens), call browse/service, render.
"""

from __future__ import annotations

import os
from datetime import datetime

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from .. import pathpolicy
from ..auth.accounts import web_actor
from ..auth.roles import OPERATOR, VIEWER, requires
from ..catalog import catalog_job
from ..catalogue import lazy_gettext as _l
from ..dbtypes import DB_INT_MAX
from ..errors import N_, StageBackupError, ValidationError
from ..extensions import db
from ..httpguard import query_int
from ..models import Job, Project
from ..paths import display, display_name, path_from_token, path_token
from ..tape.needs import tapes_needed
from . import basket, bp, browse, service
from .extract import CONFLICT_POLICIES, OVERWRITE

CONFLICT_LABELS = {"skip": _l("跳过已存在的文件"), "overwrite": _l("覆盖已存在的文件"),
                   "rename": _l("保留两者（还原的文件改名）")}


@bp.app_context_processor
def restore_labels() -> dict:
    """The browse form and a restore job's card (the shared backup card) name the conflict policy."""
    return {"conflict_labels": CONFLICT_LABELS}


def fmt_time(timestamp: float | None) -> str:
    """A member's mtime in the server's local time (mtimes far outside the calendar exist)."""
    if timestamp is None:
        return ""
    try:
        return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def _token_arg(name: str) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return path_from_token(raw)
    except ValueError:
        abort(400, _("地址已损坏：路径参数无效。"))


def _cursor_arg() -> tuple[str, int] | None:
    raw = request.args.get("c")
    if not raw:
        return None
    token, _sep, row_id = raw.rpartition(".")
    try:
        cursor = path_from_token(token), int(row_id)
        if not 0 <= cursor[1] <= DB_INT_MAX:
            raise ValueError("not a row id")
    except ValueError:
        abort(400, _("地址已损坏：路径参数无效。"))
    return cursor


def _backup_or_404(job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    # Only finished backups are offered: a failed, cancelled or interrupted one (a void tape file, say) is not.
    if job is None or job.kind != "backup" or job.status not in service.RESTORABLE_STATUSES:
        abort(404)
    return job


def _crumbs(path: str) -> list[tuple[str, str]]:
    crumbs, built = [], []
    for part in [p for p in path.split("/") if p]:
        built.append(part)
        crumbs.append((display_name(part), path_token("/".join(built))))
    return crumbs


@bp.get("/restore")
@requires(VIEWER)
def index():
    project_id = query_int("project", 0)
    project = db.session.get(Project, project_id) if project_id else None
    orphans = request.args.get("orphans") == "1" and project is None
    backups = browse.finished_backups(project.id) if project else browse.finished_backups(None) if orphans else []
    return render_template("restore/index.html", projects=browse.projects_with_backups(), project=project,
                           backups=backups, orphans=orphans, orphan_count=browse.orphan_backup_count())


FIELDS = ("target", "password", "path", "conflict")  # the restore form's fields an error may sit on


class OverwriteNotConfirmed(ValidationError):
    template = N_("overwriting replaces the files already there: tick the confirmation to go ahead")
    params = ()


def restore_options(job_id: int, form) -> dict:
    """What the restore options (templates/restore/_options.html) show: as submitted, else the defaults."""
    return {
        "conflicts": CONFLICT_POLICIES, "roots": [display(r) for r in pathpolicy.current().restore_roots],
        "target": form.get("target") or os.path.join(pathpolicy.current().restore_roots[0], f"job{job_id}"),
        "conflict": form.get("conflict"), "remark": form.get("remark") or "",
        "restore_owners": form.get("restore_owners") == "y", "where": form.get("where") or "folder",
        "confirm_overwrite": form.get("confirm_overwrite") == "y",
    }


def submit_restore(job: Job, form, paths: list[str]) -> Job:
    """Queue the restore the options describe (raises StageBackupError with the field it concerns)."""
    if form.get("conflict") == OVERWRITE and form.get("confirm_overwrite") != "y":
        raise OverwriteNotConfirmed(field="conflict")
    return service.request_restore(
        job.id, target=form.get("target", ""), paths=paths, conflict=form.get("conflict", "skip"),
        password=form.get("password") or None, remark=form.get("remark") or None, actor=web_actor(),
        restore_owners=form.get("restore_owners") == "y", to_original=form.get("where") == "original",
    )


def _posted_paths(form) -> list[str]:
    try:
        return [path_from_token(t) for t in form.getlist("path")]
    except ValueError:
        abort(400, _("地址已损坏：路径参数无效。"))


def _errors(error: StageBackupError | None) -> dict[str, str]:
    """{field: message}; an error about no field of the form under "form" (shown above the form)."""
    if error is None:
        return {}
    return {error.field if error.field in FIELDS else "form": error.translate(_)}


def _render_browse(job: Job, *, error: StageBackupError | None = None, status: int = 200, form=None):
    """The browse page; after a refused restore ``form`` is the submitted form, shown again as it was typed
    (folder or search, ticked entries, target, conflict policy, remark) so a mistake loses nothing, and the
    error sits on the field it concerns."""
    folder = (_token_arg("p") or "").strip("/")
    query = request.args.get("q", "").strip()
    page = results = None
    catalog = catalog_job(job.id)
    if query:
        results = browse.search(catalog, query, cursor=_cursor_arg())
    else:
        page = browse.list_folder(catalog, folder, after=_token_arg("after"), before=_token_arg("before"))
    searching = request.method == "GET" and request.headers.get("HX-Request") and query  # the live search
    template = "restore/_results.html" if searching else "restore/browse.html"
    form = form or MultiDict()
    # The restore form posts to this page's own URL: a refused restore shows the same view at the same address.
    view = {key: request.args[key] for key in ("p", "q", "after", "before") if request.args.get(key)}
    ticked = basket.items(current_user.user_id, job.id)
    return render_template(
        template, job=job, folder=folder, crumbs=_crumbs(folder), page=page, results=results, query=query,
        errors=_errors(error), display=display_name, path_token=path_token, fmt_time=fmt_time,
        selected={path_token(item.path) for item in ticked} | set(form.getlist("path")), basket=ticked,
        restore_action=url_for("restore.browse_backup", job_id=job.id, **view), **restore_options(job.id, form),
        tapes_needed=tapes_needed(catalog) if template == "restore/browse.html" else [],
    ), status


@bp.get("/restore/backups/<int:job_id>")
@requires(VIEWER)
def browse_backup(job_id: int):
    return _render_browse(_backup_or_404(job_id))


@bp.post("/restore/backups/<int:job_id>")
@bp.post("/restore/backups/<int:job_id>/restore")  # the address of earlier versions
@requires(OPERATOR)
def start_restore(job_id: int):
    """Restores what the basket holds and what this page's form ticked (without JavaScript ticks travel only
    in the form); the basket is emptied once the restore is queued."""
    job = _backup_or_404(job_id)
    paths = sorted(set(basket.paths(current_user.user_id, job.id)) | set(_posted_paths(request.form)))
    try:
        restore_job = submit_restore(job, request.form, paths)
    except StageBackupError as exc:
        db.session.rollback()
        return _render_browse(_backup_or_404(job_id), error=exc, status=400, form=request.form)
    restore_id = restore_job.id
    basket.clear(current_user.user_id, job.id)
    return _go_to_job(restore_id)


@bp.post("/restore/backups/<int:job_id>/basket")
@requires(OPERATOR)
def tick(job_id: int):
    """Tick (``on=1``) or untick one path (``?path=`` token); answers with the basket panel."""
    job = _backup_or_404(job_id)
    path = _token_arg("path")
    if path is None:
        abort(400, _("地址已损坏：路径参数无效。"))
    error = None
    try:
        basket.tick(current_user.user_id, job.id, catalog_job(job.id), path, request.form.get("on") == "1")
    except StageBackupError as exc:
        db.session.rollback()
        error = exc.translate(_)
    return render_template("restore/_basket.html", job=job, basket=basket.items(current_user.user_id, job.id),
                           basket_error=error, display=display_name, path_token=path_token)


@bp.post("/restore/backups/<int:job_id>/basket/clear")
@requires(OPERATOR)
def clear_basket(job_id: int):
    job = _backup_or_404(job_id)
    basket.clear(current_user.user_id, job.id)
    if request.headers.get("HX-Request"):
        return render_template("restore/_basket.html", job=job, basket=[], display=display_name,
                               path_token=path_token)
    return redirect(url_for("restore.browse_backup", job_id=job.id))


def _go_to_job(job_id: int):
    """To the job's page: htmx (which posted the form in place) is told to go there as a whole page."""
    location = url_for("backup.job_detail", job_id=job_id)
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": location}
    return redirect(location)


@bp.post("/restore/backups/<int:job_id>/verify")
@requires(OPERATOR)
def start_verify(job_id: int):
    _backup_or_404(job_id)
    try:
        verify_job = service.request_verify(job_id, password=request.form.get("password") or None, actor=web_actor())
    except StageBackupError as exc:
        db.session.rollback()
        return _render_browse(_backup_or_404(job_id), error=exc, status=400)
    return redirect(url_for("backup.job_detail", job_id=verify_job.id))


@bp.get("/restore/jobs/<int:job_id>")
@requires(VIEWER)
def job_page(job_id: int):
    """The old address of a restore or verify job: every job has one page, the shared job page."""
    if db.session.scalar(select(Job.kind).where(Job.id == job_id)) not in ("restore", "verify"):
        abort(404)
    return redirect(url_for("backup.job_detail", job_id=job_id), 301)
