"""Sign in, sign out, and /healthz.

Sign-in is throttled per client address and per user name (``SIGNIN_RATE_LIMIT``, Flask-Limiter). A
successful sign-in empties the session first: Flask's session is the signed cookie itself, so clearing it
and then storing the user (with a fresh CSRF token) is how the session is renewed at sign-in.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from ..backup.web import safe_next
from ..catalogue import lazy_gettext as _l
from ..dbtypes import begin_read_only
from ..extensions import db, limiter
from . import accounts, bp
from .accounts import web_actor
from .forms import SignInForm
from .roles import ADMIN, OPERATOR, VIEWER, public, requires


def _signin_limit() -> str:
    return str(current_app.config["SIGNIN_RATE_LIMIT"])


def _typed_name() -> str:
    return "name:" + request.form.get("name", "").strip()[: accounts.NAME_MAX]


def _render_sign_in(form: SignInForm, *, error: str | None = None, status: int = 200):
    return render_template("auth/sign_in.html", form=form, error=error, no_users=not accounts.any_user(),
                           next=request.args.get("next", "")), status


@bp.route("/sign-in", methods=["GET", "POST"])
@public
@limiter.limit(_signin_limit, methods=["POST"])  # per client address
@limiter.limit(_signin_limit, key_func=_typed_name, methods=["POST"])
def sign_in():
    form = SignInForm()
    if not form.validate_on_submit():
        return _render_sign_in(form, status=400 if form.is_submitted() else 200)
    name = form.name.data.strip()
    user = accounts.authenticate(name, form.password.data)
    if user is None:
        audit.record("web:-", "auth.sign_in_failed", name[: accounts.NAME_MAX],
                     details={"address": request.remote_addr})
        db.session.commit()
        return _render_sign_in(form, error=_("用户名或密码不正确。"), status=401)
    session.clear()  # a new session: nothing from before the sign-in (CSRF token included) is kept
    login_user(accounts.account(user), fresh=True)
    session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME (STAGEBACKUP_SESSION_LIFETIME_S)
    audit.record(f"web:{user.name}", "auth.sign_in", user.name, details={"address": request.remote_addr})
    db.session.commit()
    return redirect(safe_next(request.args.get("next")))


@bp.errorhandler(429)
def too_many_attempts(_exc):
    return _render_sign_in(SignInForm(formdata=None), error=_("登录尝试过多，请一分钟后再试。"), status=429)


@bp.post("/sign-out")
@requires(VIEWER)
def sign_out():
    # A POST: CSRFProtect has refused it already unless it carries the page's token.
    audit.record(web_actor(), "auth.sign_out", web_actor().removeprefix("web:"),
                 details={"address": request.remote_addr})
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.sign_in"))


@bp.get("/healthz")
@public
def healthz():
    """For load balancers and container checks: ``ok``, or 503 when the database does not answer; no more.

    The reason stays in the server's log: an anonymous caller learns only that something is wrong.
    """
    headers = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    try:
        # Read-only: on SQLite a plain BEGIN, so the check never queues behind the worker's writes.
        begin_read_only(db.session()).execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        current_app.logger.warning("/healthz: the database does not answer: %s", str(exc).splitlines()[0])
        return "unavailable", 503, headers
    return "ok", 200, headers


ROLE_LABELS = {VIEWER: _l("查看者"), OPERATOR: _l("操作员"), ADMIN: _l("管理员")}


@bp.app_context_processor
def role_globals() -> dict:
    return {"role_labels": ROLE_LABELS}


@bp.app_errorhandler(403)
def forbidden(_exc):
    """A signed-in user below the endpoint's role (stagebackup/auth/gate.py), in the page's language."""
    role = ROLE_LABELS.get(current_user.role, "—") if current_user.is_authenticated else "—"
    return render_template("auth/forbidden.html", role=role), 403
