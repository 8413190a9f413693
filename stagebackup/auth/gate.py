"""The gate every request passes before its view: signed in, and with the role the endpoint declares.

Anonymous requests for a page are sent to the sign-in page (with ``next=`` back here); htmx fragments and
the JSON API get 401 (htmx also gets ``HX-Redirect`` to the sign-in page, so an expired session on a polling
page lands there). A signed-in user below the endpoint's role gets 403. An endpoint that declares no role
is refused for everyone: a forgotten decision fails closed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import login_manager
from . import accounts, bp
from .roles import PUBLIC, allows, declared_role


@login_manager.user_loader
def _load_account(session_id: str):
    return accounts.load(session_id)


def _page_to_return_to() -> str | None:
    """The page to come back to after signing in: this one for a page, the browser's page for htmx."""
    if request.headers.get("HX-Request") == "true":
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        return (current.path + (f"?{current.query}" if current.query else "")) or None
    if request.method != "GET":
        return None
    return request.full_path if request.query_string else request.path


def _sign_in_required():
    sign_in = url_for("auth.sign_in", next=_page_to_return_to())
    if request.headers.get("HX-Request") == "true":
        return "", 401, {"HX-Redirect": sign_in}
    if request.path.startswith("/api/"):
        return jsonify({"error": _("请先登录。")}), 401
    return redirect(sign_in)


@bp.before_app_request
def check_access():
    # Flask-Login caches the user on ``g``, and Flask-WTF the page's CSRF token; ``g`` lives as long as the
    # app context, so a request inside an application context pushed by someone else (tests, scripts) must
    # not inherit the previous request's user or token.
    g.pop("_login_user", None)
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: a 404 or 405 follows, for signed-in users only
        return None if current_user.is_authenticated else _sign_in_required()
    required = declared_role(current_app, endpoint)
    if required == PUBLIC:
        return None
    if required is None:
        current_app.logger.error("endpoint %s declares no role (@requires): refused", endpoint)
        abort(403)
    if not current_user.is_authenticated:
        return _sign_in_required()
    if not allows(current_user.role, required):
        abort(403)
    return None
