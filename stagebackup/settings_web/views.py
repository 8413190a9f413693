"""Notification targets (add, test, remove; their URLs shown masked only) and the master key: where it is,
how to save it, and the admin's confirmation that hides the banner every page shows until then."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from .. import escrow, keys, projects
from ..auth.accounts import web_actor
from ..auth.roles import ADMIN, requires
from ..backup.web import safe_next
from ..errors import StageBackupError
from ..extensions import db
from ..models import NotificationTarget, Project
from ..notify import delivery, messages, targets
from ..notify.events import DEFAULT_EVENTS, EVENTS, LABELS
from . import bp

FIELD_MAX = 2000


def _back():
    return redirect(url_for("settings.index"))


def _refuse(error: StageBackupError):
    db.session.rollback()
    flash(error.translate(gettext), "danger")
    return _back()


def _text(value: str | None) -> str:
    return (value or "").strip()[:FIELD_MAX]


@bp.app_context_processor
def key_banner() -> dict:
    """``master_key_unsaved()`` for base.html: asked only on pages an admin sees (one primary-key read)."""
    def unsaved() -> bool:
        return current_user.is_authenticated and current_user.role == ADMIN and not escrow.is_saved()
    return {"master_key_unsaved": unsaved}


@bp.get("/settings")
@requires(ADMIN)
def index():
    rows = [(target, targets.project_name(target)) for target in targets.all_targets()]
    project_names = db.session.scalars(select(Project.name).order_by(Project.name)).all()
    return render_template(
        "settings/index.html", targets=rows, failures=delivery.recent_failures(), events=EVENTS, labels=LABELS,
        default_events=DEFAULT_EVENTS, target_languages=targets.LANGUAGES, project_names=project_names,
        key_path=escrow.key_path(), key_id=keys.ensure_master_key(), key_saved=escrow.saved_key_id())


@bp.post("/settings/notifications")
@requires(ADMIN)
def add_target():
    # Each field named literally: tests/integration/test_http_fuzz.py finds a view's parameters this way.
    name, url, project_name = (_text(request.form.get("name")), _text(request.form.get("url")),
                               _text(request.form.get("project")))
    hours, language = _text(request.form.get("stale_after_hours")), _text(request.form.get("language"))
    try:
        project = projects.get_by_name(project_name) if project_name else None
        targets.add(name, url, project=project, events=request.form.getlist("events"),
                    stale_after_hours=int(hours) if hours.isascii() and hours.isdigit() and len(hours) < 7 else None,
                    language=language or "zh_CN", actor=web_actor())
    except StageBackupError as error:
        return _refuse(error)
    flash(gettext("Notification target %(name)s added.", name=name), "success")
    return _back()


def _target(target_id: int) -> NotificationTarget | None:
    return db.session.get(NotificationTarget, target_id)


@bp.post("/settings/notifications/<int:target_id>/remove")
@requires(ADMIN)
def remove_target(target_id: int):
    target = _target(target_id)
    if target is not None:
        name = target.name
        targets.remove(name, actor=web_actor())
        flash(gettext("Notification target %(name)s removed.", name=name), "success")
    return _back()


@bp.post("/settings/notifications/<int:target_id>/test")
@requires(ADMIN)
def test_target(target_id: int):
    target = _target(target_id)
    if target is None:
        return _back()
    try:
        error = delivery.send(targets.url_of(target), messages.test_message(target))
    except StageBackupError as exc:
        return _refuse(exc)
    if error:
        flash(gettext("Sending to %(name)s failed: %(reason)s", name=target.name, reason=error), "danger")
    else:
        flash(gettext("Test message sent to %(name)s.", name=target.name), "success")
    return _back()


@bp.post("/settings/master-key/saved")
@requires(ADMIN)
def master_key_saved():
    escrow.confirm_saved(actor=web_actor())
    flash(gettext("Thank you: the master key is recorded as saved."), "success")
    return redirect(safe_next(request.form.get("next")))
