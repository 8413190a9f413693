"""Reading a job's terminal log in pages: the tail, what came after a sequence number, what came before.

Every query is a range scan of the ``(job_id, id)`` index with a LIMIT, so a job with millions of lines
costs the same as one with ten. ``job_logs.id`` is the sequence number the page asks ``after``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, union_all

from ..extensions import db
from ..models import JobLog

TAIL_LINES = 500  # a page shows this many lines at first and pages back by as many
CARD_TAIL_LINES = 30  # the overview cards keep only the latest lines (the job page has them all)
POLL_MAX_LINES = 1000  # one poll appends at most this many; the next poll continues
TAILS_PER_STATEMENT = 400  # SQLite allows 500 terms in a compound SELECT

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


def tails(job_ids: Sequence[int], limit: int = CARD_TAIL_LINES) -> dict[int, LogPage]:
    """The tail of several jobs' logs in one statement (the overview's cards): a UNION ALL of one index
    range scan per job, so neither the number of cards nor the length of their logs adds a query (past
    TAILS_PER_STATEMENT cards, one more statement per as many)."""
    rows: dict[int, list[JobLog]] = {job_id: [] for job_id in job_ids}
    for start in range(0, len(job_ids), TAILS_PER_STATEMENT):
        newest = [
            select(JobLog.id).where(JobLog.job_id == job_id).order_by(JobLog.id.desc()).limit(limit + 1).subquery()
            for job_id in job_ids[start:start + TAILS_PER_STATEMENT]
        ]
        ids = union_all(*[select(sub.c.id) for sub in newest])
        for line in db.session.scalars(select(JobLog).where(JobLog.id.in_(ids)).order_by(JobLog.id)):
            rows[line.job_id].append(line)
    return {job_id: LogPage(lines=lines[-limit:], more_before=len(lines) > limit) for job_id, lines in rows.items()}
