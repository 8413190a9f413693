"""Reading the audit log: filters (shared by the page and ``flask audit list``) and keyset pages by id.

``since`` is an ISO date or time (the server's local time, as pages show times, unless it names an offset)
or an age: ``30m``, ``2h``, ``1d``, ``1w``.
``action`` is an exact action (``project.update``) or a family (``project``: every ``project.*``).
Every value is checked; a bad one raises ``ValidationError`` naming its field, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select

from ..dbtypes import utcnow
from ..errors import N_, ValidationError
from ..extensions import db
from ..models import AuditEvent
from ..paths import is_text

PAGE_SIZE = 50
LIMIT_MAX = 1000
_AGE = re.compile(r"^(\d{1,6})([mhdw])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_ACTION = re.compile(r"^[a-z][a-z_]*(\.[a-z_]+)*$")


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None  # naive UTC, like the stored timestamps
    action: str | None = None
    project: str | None = None
    before_id: int | None = None  # keyset: events older than this id
    limit: int = PAGE_SIZE


def parse_since(text: str, now: datetime | None = None) -> datetime:
    text = text.strip()
    age = _AGE.match(text)
    try:
        if age:
            return (now or utcnow()) - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):  # not a time, or before the year 1
        raise ValidationError(N_("'%(value)s' is not a time: give an ISO date or time (2026-12-04, "
                                 "2026-12-04T08:00) or an age (30m, 2h, 1d, 1w)"), field="since",
                              value=text[:40]) from None
    return moment.astimezone(UTC).replace(tzinfo=None)  # a naive time is local: astimezone reads it so


def parse_filter(args: Mapping[str, str], *, limit: int = PAGE_SIZE) -> AuditFilter:
    """Filters from a query string or the CLI's options; empty values mean "any"."""
    since = (args.get("since") or "").strip()
    action = (args.get("action") or "").strip()
    project = (args.get("project") or "").strip()
    before = (args.get("before") or "").strip()
    if action and (len(action) > 64 or not _ACTION.match(action)):
        raise ValidationError(N_("'%(value)s' is not an action (like project.update, or project for all of them)"),
                              field="action", value=action[:64])
    if project and (len(project) > 200 or not is_text(project)):
        raise ValidationError(N_("the project name is not valid"), field="project")
    if before and not (before.isdigit() and 0 < int(before) < 2**63):
        raise ValidationError(N_("'%(value)s' is not a page position"), field="before", value=before[:20])
    if not 1 <= limit <= LIMIT_MAX:
        raise ValidationError(N_("the limit must be between 1 and %(max)s"), field="limit", max=LIMIT_MAX)
    return AuditFilter(since=parse_since(since) if since else None, action=action or None,
                       project=project or None, before_id=int(before) if before else None, limit=limit)


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: this is the last one


def page(where: AuditFilter) -> AuditPage:
    """Newest first; one indexed range per page, whatever its position."""
    query = select(AuditEvent)
    if where.since is not None:
        query = query.where(AuditEvent.at >= where.since)
    if where.action:
        family = where.action.replace("_", r"\_") + ".%"
        query = query.where(or_(AuditEvent.action == where.action, AuditEvent.action.like(family, escape="\\")))
    if where.project:
        query = query.where(AuditEvent.project == where.project)
    if where.before_id is not None:
        query = query.where(AuditEvent.id < where.before_id)
    rows = db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(where.limit + 1)).all()
    more = len(rows) > where.limit
    rows = rows[:where.limit]
    return AuditPage(rows, rows[-1].id if more else None)


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def known_projects() -> list[str]:
    return list(db.session.scalars(
        select(AuditEvent.project).where(AuditEvent.project.is_not(None)).distinct().order_by(AuditEvent.project)))


def as_dict(event: AuditEvent) -> dict:
    return {"id": event.id, "at": event.at.isoformat() + "Z", "actor": event.actor, "action": event.action,
            "project": event.project, "target": event.target, "remark": event.remark, "details": event.details}
