"""Create, edit and delete projects through forms; ``projects`` decides what is valid."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import project_checks, projects, retention
from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, requires
from ..errors import StageBackupError
from ..extensions import db
from ..models import Project
from ..project_checks import ProjectSpec
from ..schedule import cron
from . import bp
from .forms import ConfirmForm, ProjectForm
from .messages import form_error


def _place_errors(form: ProjectForm, error: StageBackupError) -> None:
    for one in getattr(error, "errors", [error]):
        placed = form_error(one)
        field = getattr(form, placed.field, None) if placed.field else None
        if field is not None:
            field.errors = [*field.errors, placed.message]
        else:
            form.form_errors.append(placed.message)


def _submit(form: ProjectForm, stored: Project | None, save: Callable[[ProjectSpec], Project]) -> Project | None:
    """The saved project, or None with every error of the form and of ``project_checks.validate`` on its field."""
    if not form.is_submitted():
        return None
    form_ok = all([form.validate(), form.check_password(stored)])  # both run: every error is shown
    if "csrf_token" in form.errors:  # not the operator's form: nothing to check or show
        return None
    try:
        spec = form.to_spec(stored=stored)
        if form_ok:
            return save(spec)
        project_checks.validate(spec)  # only to show its errors too: nothing is saved
    except StageBackupError as exc:
        db.session.rollback()
        _place_errors(form, exc)
    form.ask_password_again()
    return None


def _render(form: ProjectForm, project: Project | None):
    status = 422 if form.errors or form.form_errors else 200
    plan = retention.plan_for(project) if project is not None and project.mode != "sync" else None
    return render_template("backup/project_form.html", form=form, project=project, retention_plan=plan,
                           retention_reasons=lambda reasons: retention.reason_texts(reasons, _),
                           server_timezone=cron.server_timezone()), status


@bp.route("/backup/projects/new", methods=["GET", "POST"])
@requires(ADMIN)
def new_project():
    form = ProjectForm()
    project = _submit(form, None, lambda spec: projects.create(spec, actor=web_actor()))
    if project is not None:
        flash(_("已创建项目 %(name)s。", name=project.name), "success")
        return redirect(url_for("backup.index"))
    return _render(form, None)


@bp.route("/backup/projects/<int:project_id>/edit", methods=["GET", "POST"])
@requires(ADMIN)
def edit_project(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    form = ProjectForm()
    if not form.is_submitted():
        form.fill_from(project)
    name = project.name
    saved = _submit(form, project, lambda spec: projects.update(name, spec, actor=web_actor()))
    if saved is not None:
        flash(_("已保存项目 %(name)s。", name=saved.name), "success")
        return redirect(url_for("backup.index"))
    return _render(form, db.session.get(Project, project_id))


@bp.post("/backup/projects/<int:project_id>/delete")
@requires(ADMIN)
def delete_project(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name, delete_backups = project.name, request.form.get("backups") == "delete"
    try:
        projects.remove(name, actor=web_actor(), delete_backups=delete_backups)
    except StageBackupError as exc:
        db.session.rollback()
        flash(form_error(exc).message, "danger")
    else:
        flash(_("已删除项目 %(name)s 及其备份；任务历史保留。", name=name) if delete_backups
              else _("已删除项目 %(name)s；它的备份和任务历史保留，仍可恢复和校验。", name=name), "success")
    return redirect(url_for("backup.index"))
