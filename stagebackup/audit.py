"""Who did what, with the operator's remark: append-only."""

from __future__ import annotations

from .extensions import db
from .models import AuditEvent


def record(actor: str, action: str, target: str | None = None, *, remark: str | None = None,
           details: dict | None = None) -> None:
    db.session.add(AuditEvent(actor=actor, action=action, target=target, remark=remark, details=details))
