"""Create, edit and delete projects through forms; ``projects`` decides what is valid."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from .. import projects, retention
from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, requires
from ..errors import StageBackupError
from ..extensions import db
from ..models import Project
from ..schedule import cron
from . import bp
from .forms import ConfirmForm, ProjectForm
from .messages import form_error


def _place_error(form: ProjectForm, error: StageBackupError) -> None:
    placed = form_error(error)
    field = getattr(form, placed.field, None) if placed.field else None
    if field is not None:
        field.errors = [*field.errors, placed.message]
    else:
        form.form_errors.append(placed.message)


def _render(form: ProjectForm, project: Project | None, status: int = 200):
    plan = retention.plan_for(project) if project is not None and project.mode != "sync" else None
    return render_template("backup/project_form.html", form=form, project=project, retention_plan=plan,
                           retention_reasons=lambda reasons: retention.reason_texts(reasons, _),
                           server_timezone=cron.server_timezone()), status


@bp.route("/backup/projects/new", methods=["GET", "POST"])
@requires(ADMIN)
def new_project():
    form = ProjectForm()
    if form.validate_on_submit():
        try:
            project = projects.create(form.to_spec(), actor=web_actor())
        except StageBackupError as exc:
            db.session.rollback()
            _place_error(form, exc)
        else:
            flash(_("已创建项目 %(name)s。", name=project.name), "success")
            return redirect(url_for("backup.index"))
    return _render(form, None, 422 if form.errors or form.form_errors else 200)


@bp.route("/backup/projects/<int:project_id>/edit", methods=["GET", "POST"])
@requires(ADMIN)
def edit_project(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    form = ProjectForm()
    if form.validate_on_submit():
        try:
            project = projects.update(project.name, form.to_spec(stored=project), actor=web_actor())
        except StageBackupError as exc:
            db.session.rollback()
            project = db.session.get(Project, project_id)
            _place_error(form, exc)
        else:
            flash(_("已保存项目 %(name)s。", name=project.name), "success")
            return redirect(url_for("backup.index"))
    elif not form.is_submitted():
        form.fill_from(project)
    return _render(form, project, 422 if form.errors or form.form_errors else 200)


@bp.post("/backup/projects/<int:project_id>/delete")
@requires(ADMIN)
def delete_project(project_id: int):
    project = db.session.get(Project, project_id) or abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name = project.name
    try:
        projects.remove(name, actor=web_actor())
    except StageBackupError as exc:
        db.session.rollback()
        flash(form_error(exc).message, "danger")
    else:
        flash(_("已删除项目 %(name)s；它的任务历史保留。", name=name), "success")
    return redirect(url_for("backup.index"))
