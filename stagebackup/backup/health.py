"""The health panel: what is not protected, at a glance.

Per project the age of its last good backup (green; yellow past 1.5× its schedule's interval; red past 3×
or when it has none), its last verify and its destination's free space; per tape pool the free capacity.
A project without an enabled schedule is held to its own ``max_age_h``, else ``HEALTH_MAX_AGE_H``
(yellow past it, red past twice it). One statement for the projects with their last backup and last
verify, one for the pools.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import aliased

from ..dbtypes import utcnow
from ..errors import ValidationError
from ..explorer.mounts import Space, space
from ..extensions import db
from ..models import FINAL_STATUSES, SUCCEEDED, WARNING, Job, Project
from ..schedule import cron
from ..tape_models import Tape

GREEN, YELLOW, RED = "green", "yellow", "red"
GOOD = (SUCCEEDED, WARNING)  # a backup with skipped files still protects the rest
# Enough next runs to see the longest gap of a weekday or monthly schedule.
INTERVAL_SAMPLE = 8


@dataclass(frozen=True)
class ProjectHealth:
    project: Project
    last_good_at: datetime | None
    interval: timedelta | None  # None: no enabled schedule, held to the configured age
    limit: timedelta  # yellow past this, red past twice this
    verify: Job | None
    dest_space: Space | None

    @property
    def age(self) -> timedelta | None:
        return utcnow() - self.last_good_at if self.last_good_at else None

    @property
    def state(self) -> str:
        age = self.age
        if age is None or age > 2 * self.limit:
            return RED
        return YELLOW if age > self.limit else GREEN


@dataclass(frozen=True)
class PoolHealth:
    pool: str
    tapes: int
    free_bytes: int
    capacity_bytes: int


@dataclass(frozen=True)
class Health:
    projects: list[ProjectHealth]
    pools: list[PoolHealth]

    @property
    def unprotected(self) -> int:
        return sum(1 for p in self.projects if p.state != GREEN)


def schedule_interval(project: Project) -> timedelta | None:
    """The longest gap between the schedule's next runs (a weekday schedule's is the weekend's)."""
    if not project.schedule_cron or not project.schedule_enabled:
        return None
    try:
        runs = cron.next_runs(project.schedule_cron, project.schedule_timezone or cron.server_timezone(),
                              INTERVAL_SAMPLE)
    except (ValidationError, ValueError):  # a schedule stored before a stricter check: judged by the configured age
        return None
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
    return max(gaps) if gaps else None


def _limit(project: Project, interval: timedelta | None) -> timedelta:
    if interval is None:
        return timedelta(hours=project.max_age_h or current_app.config["HEALTH_MAX_AGE_H"])
    return interval * 1.5


def _dest_space(project: Project) -> Space | None:
    """statvfs of the destination folder (or of the nearest existing parent: the first backup makes it)."""
    if project.dest_kind != "directory" or not project.dest_path:
        return None
    path = project.dest_path
    while path and path != "/":
        room = space(path)
        if room is not None:
            return room
        path = path.rsplit("/", 1)[0] or "/"
    return space("/")


def _projects() -> list[ProjectHealth]:
    last_good = (select(func.max(Job.finished_at))
                 .where(Job.project_id == Project.id, Job.kind == "backup", Job.status.in_(GOOD))
                 .correlate(Project).scalar_subquery())
    last_verify_id = (select(func.max(Job.id))
                      .where(Job.project_id == Project.id, Job.kind == "verify", Job.status.in_(FINAL_STATUSES))
                      .correlate(Project).scalar_subquery())
    verify = aliased(Job)
    rows = db.session.execute(
        select(Project, last_good, verify).outerjoin(verify, verify.id == last_verify_id)
        .order_by(Project.name)
    ).all()
    result = []
    for project, last_good_at, last_verify in rows:
        interval = schedule_interval(project)
        result.append(ProjectHealth(project, last_good_at, interval, _limit(project, interval), last_verify,
                                    _dest_space(project)))
    return result


def _pools() -> list[PoolHealth]:
    """Free capacity of each pool's writable tapes (full, retired and write-protected ones have no room)."""
    room = case((and_(Tape.state == "labelled", Tape.write_protected.is_(False),
                      Tape.capacity_bytes > Tape.bytes_used), Tape.capacity_bytes - Tape.bytes_used), else_=0)
    rows = db.session.execute(
        select(Tape.pool, func.count(Tape.id), func.sum(room), func.sum(Tape.capacity_bytes))
        .group_by(Tape.pool).order_by(Tape.pool)
    ).all()
    return [PoolHealth(pool, count, int(free or 0), int(capacity or 0)) for pool, count, free, capacity in rows]


def load() -> Health:
    return Health(_projects(), _pools())

