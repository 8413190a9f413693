"""历史版本: from a file in the browser, every backup that holds it, and a restore of the chosen version."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from ..auth.roles import OPERATOR, VIEWER, requires
from ..errors import N_, StageBackupError, ValidationError
from ..extensions import db
from ..httpguard import query_int
from ..paths import display, path_from_token, path_token
from . import bp
from .versions import versions_of
from .views import _backup_or_404, _errors, _go_to_job, fmt_time, restore_options, submit_restore


def _path_arg(raw: str | None) -> str:
    try:
        path = path_from_token(raw or "").strip("/")
    except ValueError:
        abort(400, _("地址已损坏：路径参数无效。"))
    if not path:
        abort(400, _("地址已损坏：路径参数无效。"))
    return path


def _render(path: str, *, chosen: int | None, error: StageBackupError | None = None, status: int = 200, form=None):
    found = versions_of(path)
    chosen = chosen if any(v.job_id == chosen for v in found) else (found[0].job_id if found else None)
    options = restore_options(chosen or 0, form or MultiDict())
    return render_template("restore/versions.html", path=path, path_token=path_token, display=display,
                           versions=found, chosen=chosen, fmt_time=fmt_time, errors=_errors(error),
                           **options), status


@bp.get("/restore/versions")
@requires(VIEWER)
def versions():
    return _render(_path_arg(request.args.get("path")), chosen=query_int("job", 0))


@bp.post("/restore/versions")
@requires(OPERATOR)
def restore_version():
    path = _path_arg(request.args.get("path"))
    job_id = _form_job()
    if job_id not in {v.job_id for v in versions_of(path)}:
        return _render(path, chosen=None, status=400, form=request.form,
                       error=ValidationError(N_("choose one of the versions listed"), field="form"))
    try:
        restore_job = submit_restore(_backup_or_404(job_id), request.form, [path])
    except StageBackupError as exc:
        db.session.rollback()
        return _render(path, chosen=job_id, error=exc, status=400, form=request.form)
    return _go_to_job(restore_job.id)


def _form_job() -> int:
    """The version chosen (a backup job id); 0 when the form sent none or garbage."""
    raw = request.form.get("job", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else 0
