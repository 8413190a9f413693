"""Reading a job's terminal log in pages: the tail, what came after a sequence number, what came before.

Every query is a range scan of the ``(job_id, id)`` index with a LIMIT, so a job with millions of lines
costs the same as one with ten. ``job_logs.id`` is the sequence number the page asks ``after``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..models import JobLog

TAIL_LINES = 500  # a page shows this many lines at first and pages back by as many
CARD_TAIL_LINES = 30  # the overview cards keep only the latest lines (the job page has them all)
POLL_MAX_LINES = 1000  # one poll appends at most this many; the next poll continues

TAG_CLASSES = {
    "INFO": "tag-info",
    "ADD": "tag-ok",
    "SYNC": "tag-ok",
    "PACK": "tag-ok",
    "SKIP": "tag-skip",
    "ERROR": "tag-error",
}


@dataclass(frozen=True)
class LogPage:
    lines: list[JobLog]
    more_before: bool  # older lines exist: show "earlier lines"

    @property
    def first_seq(self) -> int | None:
        return self.lines[0].id if self.lines else None

    @property
    def last_seq(self) -> int:
        return self.lines[-1].id if self.lines else 0


def _older(job_id: int, before: int | None, limit: int) -> LogPage:
    query = select(JobLog).where(JobLog.job_id == job_id)
    if before is not None:
        query = query.where(JobLog.id < before)
    rows = list(db.session.scalars(query.order_by(JobLog.id.desc()).limit(limit + 1)))
    return LogPage(lines=rows[:limit][::-1], more_before=len(rows) > limit)


def tail(job_id: int, limit: int = TAIL_LINES) -> LogPage:
    return _older(job_id, None, limit)


def before(job_id: int, seq: int, limit: int = TAIL_LINES) -> LogPage:
    return _older(job_id, seq, limit)


def after(job_id: int, seq: int, limit: int = POLL_MAX_LINES) -> list[JobLog]:
    return list(db.session.scalars(
        select(JobLog).where(JobLog.job_id == job_id, JobLog.id > seq).order_by(JobLog.id).limit(limit)
    ))
