"""The scheduler lease: only the process holding the unexpired ``scheduler_lease`` row enqueues scheduled runs.

Taken and renewed with one compare-and-set statement (``UPDATE … WHERE holder = me OR expired``, or an
``INSERT`` that the primary key lets only one process win), so two schedulers, on two hosts against
PostgreSQL or two processes against one SQLite file, never both hold it. The others wait and take over
once it expires. Expiry is judged by each host's clock: keep the hosts' clocks in sync (NTP).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..dbtypes import utcnow
from ..extensions import db
from ..models import SchedulerLease

NAME = "scheduler"


def acquire(holder: str, ttl_s: float, now: datetime | None = None, name: str = NAME) -> bool:
    """Take the lease, or renew it when ``holder`` has it: True when ``holder`` holds it for ``ttl_s`` more."""
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_s)
    taken = db.session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name, or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if taken or db.session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == name)) is not None:
        db.session.commit()
        return taken
    db.session.add(SchedulerLease(name=name, holder=holder, expires_at=expires))
    try:
        db.session.commit()
    except IntegrityError:  # another scheduler inserted the row first: it holds the lease
        db.session.rollback()
        return False
    return True


def holds(holder: str, now: datetime | None = None, name: str = NAME) -> bool:
    return db.session.scalar(
        select(SchedulerLease.name).where(
            SchedulerLease.name == name, SchedulerLease.holder == holder, SchedulerLease.expires_at > (now or utcnow())
        )
    ) is not None


def holder_of(name: str = NAME) -> tuple[str, datetime] | None:
    row = db.session.get(SchedulerLease, name)
    return (row.holder, row.expires_at) if row is not None else None


def release(holder: str, name: str = NAME) -> None:
    """Give the lease up at once (a clean stop), so a waiting scheduler need not wait for it to expire."""
    db.session.execute(delete(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder))
    db.session.commit()
