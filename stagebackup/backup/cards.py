"""What a job card shows, derived from the job row and its stage rows only (no I/O, no lazy loads).

A poll of one card costs one indexed query: the job, its project's tape pool and its stage rows, joined, read
as plain rows on the session's connection: the job is a row with the ``jobs`` table's columns under their own
names (what the templates read), not an ORM ``Job``, whose loading was about a tenth of a poll
(docs/performance.md, "Web polling"). Numbers the page shows (elapsed, rate, time left, report age) are
computed here, at one ``now``, so the page and the poll endpoint render the same partial from the same inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from flask import current_app
from sqlalchemy import Row, bindparam, select

from ..dbtypes import plain_rows, utcnow
from ..extensions import db
from ..models import ACTIVE_STATUSES, FINAL_STATUSES, RUNNING, WAITING_MEDIA, Job, JobStage, Project
from ..stages import stage_steps

# A worker heartbeats every HEARTBEAT_INTERVAL_S; this many intervals of silence make a card say so.
STALE_HEARTBEATS = 3
STALE_MIN_S = 15.0


class StageTimes(NamedTuple):
    """What a badge's state is derived from (``stages.stage_state``): a ``job_stages`` row's timestamps."""

    code: str
    started_at: datetime | None
    finished_at: datetime | None
    failed_at: datetime | None


_STAGE_COLUMNS = StageTimes._fields


@dataclass
class JobCard:
    job: Row  # the ``jobs`` table's columns, read by name as a ``Job``'s attributes, and ``card_pool``
    steps: list[dict]
    now: datetime
    stale_after_s: float
    stall_warning_s: float = field(default_factory=lambda: float(current_app.config["STALL_WARNING_S"]))

    @property
    def pool(self) -> str | None:
        """The tape pool of the job's project (a prompt for a tape names it)."""
        return self.job.card_pool

    @property
    def active(self) -> bool:
        """Queued, running or waiting for media: the card keeps polling."""
        return self.job.status in ACTIVE_STATUSES

    @property
    def final(self) -> bool:
        return self.job.status in FINAL_STATUSES

    @property
    def percent(self) -> int:
        return 100 if self.job.status in ("succeeded", "warning") else max(0, min(100, self.job.progress or 0))

    @property
    def elapsed_s(self) -> float | None:
        if self.job.started_at is None:
            return None
        return ((self.job.finished_at or self.now) - self.job.started_at).total_seconds()

    @property
    def rate_is_current(self) -> bool:
        return self.active and self.job.rate_bytes_s is not None

    @property
    def rate_bps(self) -> float | None:
        """While running, the worker's current (windowed) rate; once finished, the average over the job."""
        job = self.job
        if self.rate_is_current:
            return job.rate_bytes_s
        if job.started_at is None or not job.bytes_done:
            return None
        until = job.finished_at or job.heartbeat_at or self.now
        seconds = (until - job.started_at).total_seconds()
        return job.bytes_done / seconds if seconds > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate_bps
        if not self.active or not rate or self.job.bytes_total <= self.job.bytes_done:
            return None
        return (self.job.bytes_total - self.job.bytes_done) / rate

    @property
    def report_age_s(self) -> float | None:
        """How long ago the worker last reported: tells "stuck" from "slow"."""
        if self.job.status not in (RUNNING, WAITING_MEDIA) or self.job.heartbeat_at is None:
            return None
        return max(0.0, (self.now - self.job.heartbeat_at).total_seconds())

    @property
    def stale(self) -> bool:
        age = self.report_age_s
        return age is not None and age > self.stale_after_s

    @property
    def stalled_s(self) -> float | None:
        """The worker is alive but the job has not moved (bytes or files) for longer than the warning
        threshold: seconds since it last did. None while it moves, waits for a tape, or the worker is silent."""
        job = self.job
        if job.status != RUNNING or self.stale or job.progress_at is None:
            return None
        age = (self.now - job.progress_at).total_seconds()
        return age if age > self.stall_warning_s else None

    @property
    def waiting_media(self) -> bool:
        return self.job.status == WAITING_MEDIA


def _stale_after_s() -> float:
    return max(STALE_MIN_S, STALE_HEARTBEATS * float(current_app.config["HEARTBEAT_INTERVAL_S"]))


def load_card(job_id: int) -> JobCard | None:
    """One job's card: the one query a poll costs."""
    found = _cards(plain_rows(db.session, _one_card_query(), {"job_id": job_id}))
    return found[0] if found else None


def _cards_query():
    """Jobs with their project's tape pool and their stage rows, joined: a row per stage (one with no stage
    for a job that has none yet), so a card, or every card of the page, costs one query. The stage's columns
    are labelled ``stage_*`` beside the job's own."""
    stage = JobStage.__table__.c
    return (select(Job.__table__, Project.dest_pool.label("card_pool"),
                   *(stage[name].label(f"stage_{name}") for name in _STAGE_COLUMNS))
            .outerjoin(Project, Project.id == Job.project_id)
            .outerjoin(JobStage, JobStage.job_id == Job.id))


# The two statements every poll runs are built once, with parameters: building one (and its cache key) cost
# about as much as running it.
@functools.cache
def _one_card_query():
    return _cards_query().where(Job.id == bindparam("job_id"))


@functools.cache
def _active_cards_query():
    return _cards_query().where(Job.status.in_(ACTIVE_STATUSES), Job.id > bindparam("after_id")).order_by(Job.id)


def _cards(rows: Iterable[Row]) -> list[JobCard]:
    """Cards from the joined rows, in the order of the jobs' first rows (a job's first row is its ``job``)."""
    jobs: dict[int, tuple[Row, list[StageTimes]]] = {}
    for row in rows:
        _job, stages = jobs.setdefault(row.id, (row, []))
        if row.stage_code is not None:
            stages.append(StageTimes(row.stage_code, row.stage_started_at, row.stage_finished_at,
                                     row.stage_failed_at))
    now, stale_after = utcnow(), _stale_after_s()
    return [JobCard(job, stage_steps(job, stages), now, stale_after) for job, stages in jobs.values()]


def active_cards(after_id: int = 0) -> list[JobCard]:
    """Queued, running and waiting jobs (oldest first), newer than ``after_id``: one query."""
    return _cards(plain_rows(db.session, _active_cards_query(), {"after_id": after_id}))
