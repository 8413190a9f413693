"""Export and import of project definitions in the browser: a download, and an upload whose preview lists
what will be created, replaced, skipped or renamed (and which passwords are needed) before anything is written.
``transfer`` decides everything; the file waits for the confirmation in ``transfer_staging``."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from .. import transfer, transfer_staging
from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, VIEWER, requires
from ..dbtypes import utcnow
from ..errors import StageBackupError
from ..extensions import db
from ..models import Project
from . import bp
from .forms import ImportConfirmForm, ImportUploadForm
from .messages import form_error


def _limit() -> int:
    return int(current_app.config["IMPORT_MAX_BYTES"])


def _page(form: ImportUploadForm, problems: list | None = None, status: int = 200):
    names = db.session.scalars(select(Project.name).order_by(Project.name)).all()
    return render_template("backup/transfer.html", form=form, project_names=names, problems=problems,
                           limit=_limit()), status


def _problems(error: StageBackupError) -> list[dict]:
    """Each reason in the page's language, with the project (position and name) and field it concerns."""
    found = getattr(error, "problems", None) or [transfer.Problem(error)]
    return [{"index": p.index, "name": p.name, "field": p.error.field, "message": form_error(p.error).message}
            for p in found]


@bp.get("/backup/projects/transfer")
@requires(VIEWER)
def transfer_page():
    return _page(ImportUploadForm())


@bp.get("/backup/projects/export")
@requires(VIEWER)
def export_projects():
    try:
        document = transfer.export_document(request.args.getlist("project"))
    except StageBackupError as exc:
        return _page(ImportUploadForm(), _problems(exc), 400)
    filename = f"stagebackup-projects-{utcnow():%Y%m%d-%H%M%S}.json"
    return Response(transfer.dumps(document), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.post("/backup/projects/import")
@requires(ADMIN)
def import_preview():
    form = ImportUploadForm()
    if not form.validate_on_submit() or not form.file.data:
        form.file.errors = [*form.file.errors, _("请选择一个导出文件。")]
        return _page(form, status=422)
    raw = form.file.data.read(_limit() + 1)
    try:
        plan = transfer.plan(raw, on_conflict=form.on_conflict.data, max_bytes=_limit())
    except StageBackupError as exc:
        return _page(form, _problems(exc), 422)
    confirm = ImportConfirmForm(token=transfer_staging.stage(raw), on_conflict=plan.on_conflict)
    return render_template("backup/import_preview.html", plan=plan, form=confirm)


@bp.post("/backup/projects/import/confirm")
@requires(ADMIN)
def import_confirm():
    """Import the staged file with the typed passwords; any problem shows the preview again, nothing written."""
    form = ImportConfirmForm()
    if not form.validate_on_submit():
        return _page(ImportUploadForm(), status=400)
    try:
        raw = transfer_staging.read(form.token.data)
        plan = transfer.plan(raw, on_conflict=form.on_conflict.data, max_bytes=_limit())
    except StageBackupError as exc:
        return _page(ImportUploadForm(), _problems(exc), 422)
    passwords = {item.name: request.form.get(f"password-{item.index}", "") for item in plan.missing_passwords}
    try:
        transfer.import_projects(raw, on_conflict=plan.on_conflict, max_bytes=_limit(), actor=web_actor(),
                                 passwords={name: typed for name, typed in passwords.items() if typed})
    except StageBackupError as exc:
        return render_template("backup/import_preview.html", plan=plan, form=form, problems=_problems(exc)), 422
    transfer_staging.discard(form.token.data)
    flash(_("导入完成：新建 %(create)s 个，替换 %(replace)s 个，跳过 %(skip)s 个，以新名称导入 %(rename)s 个。",
            create=plan.count("create"), replace=plan.count("replace"), skip=plan.count("skip"),
            rename=plan.count("rename")), "success")
    return redirect(url_for("backup.index"))
