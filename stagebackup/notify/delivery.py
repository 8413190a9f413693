"""Delivery of the outbox through Apprise, by the scheduler's courier thread (courier.py).

Each due row is sent with no transaction open during the send. A failure is logged, kept on the row (the
settings page shows it) and retried with backoff; after ``NOTIFY_MAX_ATTEMPTS`` the row is given up. A job
is never touched.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..dbtypes import utcnow
from ..extensions import db
from ..models import Notification, NotificationTarget
from . import messages, targets

log = logging.getLogger(__name__)
BACKOFF_BASE_S, BACKOFF_MAX_S = 30.0, 3600.0


def backoff_s(attempts: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def send(url: str, message: messages.Message) -> str | None:
    """Send through Apprise; None on success, else what Apprise logged about the failure."""
    import apprise  # here: loading its ~200 modules costs every process a third of a second at start

    sender = apprise.Apprise()
    if not sender.add(url):
        return "Apprise does not understand this URL"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = sender.notify(title=message.title, body=message.body, notify_type=message.kind)
    if ok:
        return None
    lines = [line.split(" - ", 2)[-1].strip() for line in captured.getvalue().splitlines() if line.strip()]
    return lines[-1] if lines else "Apprise reported a failure"


def _due(now: datetime, limit: int) -> list[int]:
    return list(db.session.scalars(
        select(Notification.id)
        .where(Notification.delivered_at.is_(None), Notification.gave_up_at.is_(None),
               Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id).limit(limit)))


def deliver_due(now: datetime | None = None, limit: int = 20) -> tuple[int, int]:
    """Send what is due; returns (delivered, failed)."""
    delivered = failed = 0
    for row_id in _due(now or utcnow(), limit):
        try:
            error = _deliver(row_id)
        except LookupError:  # its target was removed meanwhile
            continue
        if error is None:
            delivered += 1
        else:
            failed += 1
    return delivered, failed


def _deliver(row_id: int) -> str | None:
    row = db.session.get(Notification, row_id)
    if row is None:
        raise LookupError(row_id)
    target = db.session.get(NotificationTarget, row.target_id)
    try:
        url = targets.url_of(target)
        message = messages.render(row, target)
    except Exception as exc:  # noqa: BLE001 - a broken row must not stop the others
        error = f"{type(exc).__name__}: {exc}"
    else:
        db.session.rollback()  # no transaction (SQLite's write lock) while the network is slow
        error = send(url, message)
    _record(row_id, error)
    return error


def _record(row_id: int, error: str | None) -> None:
    row = db.session.get(Notification, row_id)
    if row is None:  # its target was removed while it was being sent
        db.session.rollback()
        return
    target = db.session.get(NotificationTarget, row.target_id)
    now = utcnow()
    row.attempts += 1
    if error is None:
        row.delivered_at, row.last_error = now, None
    else:
        row.last_error = error[:2000]
        if row.attempts >= int(current_app.config["NOTIFY_MAX_ATTEMPTS"]):
            row.gave_up_at = now
            log.error("notification #%s (%s) to %s: giving up after %s attempts: %s", row.id, row.event,
                      target.name, row.attempts, error)
        else:
            row.next_attempt_at = now + timedelta(seconds=backoff_s(row.attempts))
            log.warning("notification #%s (%s) to %s failed (attempt %s), retrying at %s: %s", row.id, row.event,
                        target.name, row.attempts, row.next_attempt_at.isoformat(timespec="seconds"), error)
    db.session.commit()


def recent_failures(limit: int = 20) -> list[tuple[Notification, str]]:
    """The last failed attempts (still retrying or given up), with their target's name, for the settings page."""
    return [(row, name) for row, name in db.session.execute(
        select(Notification, NotificationTarget.name)
        .join(NotificationTarget, NotificationTarget.id == Notification.target_id)
        .where(Notification.last_error.is_not(None))
        .order_by(Notification.id.desc()).limit(limit))]
