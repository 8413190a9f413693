"""App-wide web plumbing shared by every blueprint's pages: security headers, the language switch,
template filters and globals. Registered through the backup blueprint's ``*_app_*`` hooks, so it holds
for every response of the app (restore pages, static files, errors and the JSON API included).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, redirect, request, url_for
from flask_babel import format_timedelta

from ..auth.roles import public
from ..catalogue import lazy_gettext as _l
from ..errors import human_bytes
from ..models import Job
from ..paths import display
from ..stages import BADGE_CLASSES, job_kind
from . import bp
from .i18n import job_error
from .logs import CARD_TAIL_LINES, TAG_CLASSES

# No 'unsafe-inline' and no 'unsafe-eval' for scripts: every script is a file under static/.
# Styles are files too (progress widths are classes, see static/css/app.css); Bootstrap's CSS uses
# data: URIs for its form icons.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600

STATUS_LABELS = {
    "queued": _l("排队中"),
    "running": _l("运行中"),
    "waiting_media": _l("等待磁带"),
    "succeeded": _l("成功"),
    "warning": _l("警告"),
    "failed": _l("失败"),
    "interrupted": _l("已中断"),
    "cancelled": _l("已取消"),
}
STATUS_CLASSES = {
    "queued": "text-bg-secondary",
    "running": "text-bg-primary",
    "waiting_media": "text-bg-warning",
    "succeeded": "text-bg-success",
    "warning": "text-bg-warning",
    "failed": "text-bg-danger",
    "interrupted": "text-bg-danger",
    "cancelled": "text-bg-secondary",
}
TRIGGER_LABELS = {"manual": _l("手动"), "schedule": _l("定时"), "cli": _l("命令行")}
KIND_LABELS = {"backup": _l("备份"), "sync": _l("同步"), "restore": _l("还原"), "verify": _l("校验")}


@bp.after_app_request
def security_headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.app_context_processor
def layout_globals() -> dict:
    from .. import select_locale  # the same choice Flask-Babel made for this request

    locale = select_locale()
    return {
        "current_locale": locale,
        "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in current_app.config["LANGUAGES"]],
        "status_labels": STATUS_LABELS,
        "status_classes": STATUS_CLASSES,
        "trigger_labels": TRIGGER_LABELS,
        "kind_labels": KIND_LABELS,
        "badge_classes": BADGE_CLASSES,
        "tag_classes": TAG_CLASSES,
        "log_card_lines": CARD_TAIL_LINES,
        "display": display,
        "endpoint_exists": lambda name: name in current_app.view_functions,
    }


def safe_next(target: str | None) -> str:
    """Only paths on this site (the language switch, the sign-in page): never an open redirect.

    Browsers read "/\\host" as "//host", so a backslash anywhere is refused; so is a control character
    (a newline would split the Location header)."""
    if target and target.isprintable():
        parts = urlsplit(target)
        if (not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//")
                and "\\" not in target and target.isprintable()):
            return target
    return url_for("backup.index")


def redirect_back():
    """Back to ``?next=`` or the page the request came from (same site only)."""
    referrer = urlsplit(request.referrer).path if request.referrer else None
    return redirect(safe_next(request.args.get("next") or referrer))


@bp.get("/lang/<code>")
@public
def switch_language(code: str):
    response = redirect_back()
    if code in current_app.config["LANGUAGES"]:
        response.set_cookie("lang", code, max_age=LANG_COOKIE_MAX_AGE_S, samesite="Lax", httponly=True)
    return response




# -- template filters ------------------------------------------------------------------------------

@bp.app_template_filter("bytes")
def bytes_filter(count: int | float | None) -> str:
    return human_bytes(count or 0)


@bp.app_template_filter("kind_label")
def kind_label_filter(job: Job) -> str:
    """备份 / 同步 / 还原 / 校验 in the page's language."""
    return str(KIND_LABELS[job_kind(job)])


@bp.app_template_filter("clock")
def clock_filter(seconds: float | None) -> str:
    """A duration as H:MM:SS (the same in every language)."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@bp.app_template_filter("ago")
def ago_filter(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return format_timedelta(timedelta(seconds=-max(0, seconds)), add_direction=True, threshold=1.5)


bp.add_app_template_filter(job_error, "job_error")


@bp.app_template_filter("localtime")
def localtime_filter(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Timestamps are stored as naive UTC; people read the server's local time (as archive names do)."""
    if value is None:
        return "—"
    return value.replace(tzinfo=UTC).astimezone().strftime(fmt)
