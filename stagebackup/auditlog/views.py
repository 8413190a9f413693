"""``/audit``: the audit log, newest first, 50 a page (keyset by id), filtered by action, project and time."""

from __future__ import annotations

from flask import render_template, request

from ..auth.roles import VIEWER, requires
from ..backup.messages import form_error
from ..errors import ValidationError
from . import bp, query


@bp.get("/audit")
@requires(VIEWER)
def index():
    """A bad filter value is a 400 with its message next to the field, and no rows."""
    error = None
    try:
        where = query.parse_filter(request.args)
        result = query.page(where)
    except ValidationError as exc:
        error, result = form_error(exc), query.AuditPage([], None)
    filters = {key: request.args.get(key, "").strip() for key in ("since", "action", "project")}
    return render_template(
        "audit/index.html", page=result, filters=filters, error=error,
        link_args={key: value for key, value in filters.items() if value},
        actions=query.known_actions(), project_names=query.known_projects(),
    ), 400 if error else 200
