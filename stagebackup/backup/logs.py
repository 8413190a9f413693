"""Reading a job's terminal log in pages: the tail, what came after a sequence number, what came before,
a window from a given line (the first error), one tag only, and the whole log in batches for a download.

Every query is a range scan of the ``(job_id, id)`` or ``(job_id, tag, id)`` index with a LIMIT, so a job
with millions of lines costs the same as one with ten. ``job_logs.id`` is the sequence number the page
asks ``after``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import Integer, Row, bindparam, func, select, union_all

from ..dbtypes import plain_rows
from ..extensions import db
from ..models import LOG_TAGS, JobLog

TAIL_LINES = 500  # a page shows this many lines at first and pages back (or on) by as many
CARD_TAIL_LINES = 30  # the overview cards keep only the latest lines (the job page has them all)
POLL_MAX_LINES = 1000  # one poll appends at most this many; the next poll continues
TAILS_PER_STATEMENT = 400  # SQLite allows 500 terms in a compound SELECT
DOWNLOAD_BATCH_LINES = 5000  # a download reads the log in batches of this many rows, never all at once

TAG_CLASSES = {
    "INFO": "tag-info",
    "ADD": "tag-ok",
    "SYNC": "tag-ok",
    "PACK": "tag-ok",
    "SKIP": "tag-skip",
    "ERROR": "tag-error",
}


class BadLogTag(ValueError):
    """A ``tag`` query argument that is not one of LOG_TAGS; its text is the message the page shows."""


def parse_tag(value: str | None) -> str | None:
    """The ``tag`` argument of a log request: empty means every line; anything else must be a known tag."""
    if not value:
        return None
    tag = value.strip().strip("[]").upper()
    if tag not in LOG_TAGS:
        raise BadLogTag(_("未知的日志标签：%(tag)s（可用：%(tags)s）", tag=value[:20], tags=", ".join(LOG_TAGS)))
    return tag


# A line as pages show it. Read as plain rows on the session's connection: the ORM's objects cost a card poll
# about 0.1 ms more for the same columns (docs/performance.md, "Web polling").
LINE_COLUMNS = (JobLog.id, JobLog.job_id, JobLog.at, JobLog.tag, JobLog.message)


def _rows(query, values: dict | None = None) -> list[Row]:
    return plain_rows(db.session, query, values).all()


@dataclass(frozen=True)
class LogPage:
    lines: list[Row]
    more_before: bool  # older lines exist: show "earlier lines"
    more_after: bool = False  # a window that does not reach the end: show "later lines"

    @property
    def first_seq(self) -> int | None:
        return self.lines[0].id if self.lines else None

    @property
    def last_seq(self) -> int:
        return self.lines[-1].id if self.lines else 0


def _lines(job_id, tag):
    """A job's lines, of one tag or all (``tag`` None); the values may be bind parameters."""
    query = select(*LINE_COLUMNS).where(JobLog.job_id == job_id)
    return query if tag is None else query.where(JobLog.tag == tag)


def _older(job_id: int, before: int | None, limit: int, tag: str | None) -> LogPage:
    query = _lines(job_id, tag)
    if before is not None:
        query = query.where(JobLog.id < before)
    rows = _rows(query.order_by(JobLog.id.desc()).limit(limit + 1))
    return LogPage(lines=rows[:limit][::-1], more_before=len(rows) > limit)


def tail(job_id: int, limit: int = TAIL_LINES, tag: str | None = None) -> LogPage:
    return _older(job_id, None, limit, tag)


def before(job_id: int, seq: int, limit: int = TAIL_LINES, tag: str | None = None) -> LogPage:
    return _older(job_id, seq, limit, tag)


def after(job_id: int, seq: int, limit: int = POLL_MAX_LINES, tag: str | None = None) -> list[Row]:
    """The ``limit`` lines after ``seq``: what every card poll of an open log asks."""
    values = {"job_id": job_id, "seq": seq, "limit": limit} | ({} if tag is None else {"tag": tag})
    return _rows(_after_query(tag is not None), values)


@functools.cache  # built once: building it cost a poll about as much as running it
def _after_query(tagged: bool):
    lines = _lines(bindparam("job_id"), bindparam("tag") if tagged else None)
    return lines.where(JobLog.id > bindparam("seq")).order_by(JobLog.id).limit(bindparam("limit", type_=Integer))


def later(job_id: int, seq: int, limit: int = TAIL_LINES, tag: str | None = None) -> LogPage:
    """The ``limit`` lines after ``seq``, and whether more follow ("later lines")."""
    rows = after(job_id, seq, limit + 1, tag)
    return LogPage(lines=rows[:limit], more_before=False, more_after=len(rows) > limit)


def window(job_id: int, first: int, limit: int = TAIL_LINES, tag: str | None = None) -> LogPage:
    """``limit`` lines from ``first`` on (a jump far back): two range scans, whatever the log's length."""
    page = later(job_id, first - 1, limit, tag)
    older = _lines(job_id, tag).with_only_columns(JobLog.id).where(JobLog.id < first).limit(1)
    return LogPage(lines=page.lines, more_before=db.session.scalar(older) is not None, more_after=page.more_after)


def first_error(job_id: int) -> int | None:
    """The sequence number of the job's first [ERROR] line: one seek in the ``(job_id, tag, id)`` index."""
    return db.session.scalar(
        select(func.min(JobLog.id)).where(JobLog.job_id == job_id, JobLog.tag == "ERROR")
    )


def batches(job_id: int, size: int = DOWNLOAD_BATCH_LINES) -> Iterator[list[Row]]:
    """Every line in order as (at, tag, message) rows, ``size`` at a time (a keyset walk of the index)."""
    last = 0
    while True:
        rows = db.session.execute(
            select(JobLog.id, JobLog.at, JobLog.tag, JobLog.message)
            .where(JobLog.job_id == job_id, JobLog.id > last).order_by(JobLog.id).limit(size)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def tails(job_ids: Sequence[int], limit: int = CARD_TAIL_LINES) -> dict[int, LogPage]:
    """The tail of several jobs' logs in one statement (the overview's cards): a UNION ALL of one index
    range scan per job, so neither the number of cards nor the length of their logs adds a query (past
    TAILS_PER_STATEMENT cards, one more statement per as many)."""
    rows: dict[int, list[Row]] = {job_id: [] for job_id in job_ids}
    for start in range(0, len(job_ids), TAILS_PER_STATEMENT):
        newest = [
            select(JobLog.id).where(JobLog.job_id == job_id).order_by(JobLog.id.desc()).limit(limit + 1).subquery()
            for job_id in job_ids[start:start + TAILS_PER_STATEMENT]
        ]
        ids = union_all(*[select(sub.c.id) for sub in newest])
        for line in _rows(select(*LINE_COLUMNS).where(JobLog.id.in_(ids)).order_by(JobLog.id)):
            rows[line.job_id].append(line)
    return {job_id: LogPage(lines=lines[-limit:], more_before=len(lines) > limit) for job_id, lines in rows.items()}
