"""Who did what, with the operator's remark: append-only.

Each row names the project it concerns (``project``, a copy of the name, so the audit page can filter by
project after jobs are pruned or the project is removed); callers that put the project in ``details``
need not name it twice.
"""

from __future__ import annotations

from .extensions import db
from .models import AuditEvent


def record(actor: str, action: str, target: str | None = None, *, remark: str | None = None,
           details: dict | None = None, project: str | None = None) -> None:
    if project is None and details is not None and isinstance(details.get("project"), str):
        project = details["project"]
    db.session.add(AuditEvent(actor=actor, action=action, target=target, remark=remark, details=details,
                              project=project))
