"""Retention: which of a project's backups to keep, and the prune that deletes the rest.

The policy is restic's and borg's ``forget``: keep the newest ``last`` backups; for ``daily``, ``weekly``,
``monthly`` and ``yearly`` keep the newest backup of each of that many periods that have one, counting back
from the newest backup (periods in the server's time zone); and keep every backup younger than ``within_days``.
A backup kept by any rule stays.

Guard rails, whatever the policy says: the newest good backup is always kept; a backup that an active restore
or verify reads is kept; and when the project's last finished run failed (or was interrupted) nothing is
pruned at all, because the backups that exist may be the only good ones for a while.

``plan_prune`` is a pure function (a frozen clock tests it); ``prune_project`` reads the facts from the
catalog, and unless it is a dry run deletes directory archives past the policy (file, then members, then
marks the archive expired) and marks tape archives expired (their media are recycled by the tape pools).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select

from . import audit
from .dbtypes import utcnow
from .errors import N_
from .extensions import db
from .models import ACTIVE_STATUSES, FINAL_STATUSES, SUCCEEDED, WARNING, Archive, ArchiveMember, Job, Project
from .tape import recycle

log = logging.getLogger(__name__)
GOOD_STATUSES = (SUCCEEDED, WARNING)
MEMBER_BATCH = 5000  # archive_members rows deleted per statement: short transactions on a big catalog

#: Why a backup is kept or goes: the key the plan carries, and the words the page and the CLI show.
REASONS = {
    "last": N_("among the last %(n)s"),
    "daily": N_("newest of its day (%(n)s days)"),
    "weekly": N_("newest of its week (%(n)s weeks)"),
    "monthly": N_("newest of its month (%(n)s months)"),
    "yearly": N_("newest of its year (%(n)s years)"),
    "within": N_("younger than %(n)s days"),
    "newest": N_("the newest good backup"),
    "in_use": N_("a restore or verify is reading it"),
    "last_run_failed": N_("the project's last run failed: nothing is pruned"),
    "no_policy": N_("no retention policy"),
    "expired": N_("past the retention policy"),
}


@dataclass(frozen=True)
class Policy:
    last: int | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None
    within_days: int | None = None

    @property
    def empty(self) -> bool:
        return all(not value for value in (self.last, self.daily, self.weekly, self.monthly, self.yearly,
                                           self.within_days))

    @classmethod
    def of(cls, project: Project) -> Policy:
        return cls(project.keep_last, project.keep_daily, project.keep_weekly, project.keep_monthly,
                   project.keep_yearly, project.keep_within_days)


@dataclass(frozen=True)
class Candidate:
    """A good backup that still has its archives: the job (any object), when it ran, whether a job reads it."""

    job: Any
    at: datetime
    in_use: bool = False


#: Period rules, oldest-first in the order reasons are listed: the bucket a backup's time falls into.
PERIODS = {
    "daily": lambda at: at.date(),
    "weekly": lambda at: at.isocalendar()[:2],
    "monthly": lambda at: (at.year, at.month),
    "yearly": lambda at: at.year,
}


def _period_keeps(ordered: list[Candidate], rule: str, count: int | None) -> set[int]:
    """Indexes (into newest-first ``ordered``) of the newest backup of each of ``count`` periods."""
    kept: set[int] = set()
    if not count:
        return kept
    bucket_of, last_bucket = PERIODS[rule], None
    for index, candidate in enumerate(ordered):
        bucket = bucket_of(candidate.at)
        if bucket != last_bucket:
            kept.add(index)
            last_bucket = bucket
            if len(kept) >= count:
                break
    return kept


def plan_prune(backups: Iterable[Candidate], policy: Policy, now: datetime, *,
               last_run_failed: bool = False) -> list[tuple[Any, bool, list[tuple[str, int | None]]]]:
    """[(job, keep, reasons)] newest first; each reason is (key of ``REASONS``, its count or None)."""
    ordered = sorted(backups, key=lambda c: c.at, reverse=True)
    reasons: list[list[tuple[str, int | None]]] = [[] for _ in ordered]
    if policy.empty or last_run_failed:
        why = ("no_policy", None) if policy.empty else ("last_run_failed", None)
        return [(candidate.job, True, [why]) for candidate in ordered]
    for index in range(min(policy.last or 0, len(ordered))):
        reasons[index].append(("last", policy.last))
    for rule in PERIODS:
        count = getattr(policy, rule)
        for index in _period_keeps(ordered, rule, count):
            reasons[index].append((rule, count))
    if policy.within_days:
        horizon = now - timedelta(days=policy.within_days)
        for index, candidate in enumerate(ordered):
            if candidate.at >= horizon:
                reasons[index].append(("within", policy.within_days))
    if ordered:
        reasons[0].append(("newest", None))
    for index, candidate in enumerate(ordered):
        if candidate.in_use:
            reasons[index].append(("in_use", None))
    return [(candidate.job, bool(why), why or [("expired", None)])
            for candidate, why in zip(ordered, reasons, strict=True)]


def reason_texts(reasons: list[tuple[str, int | None]], translate=lambda s: s) -> list[str]:
    return [translate(REASONS[key]) % {"n": n} for key, n in reasons]


# -- the catalog's facts ------------------------------------------------------------------------------------
def _live_backups(project_id: int) -> list[Job]:
    """The project's good backups with at least one archive not yet expired, newest first."""
    live = select(Archive.job_id).where(Archive.expired_at.is_(None)).distinct()
    return list(db.session.scalars(
        select(Job).where(Job.project_id == project_id, Job.kind == "backup", Job.status.in_(GOOD_STATUSES),
                          Job.id.in_(live)).order_by(Job.id.desc())))


def _in_use(job_ids: list[int]) -> set[int]:
    if not job_ids:
        return set()
    return set(db.session.scalars(select(Job.source_job_id).where(
        Job.source_job_id.in_(job_ids), Job.kind.in_(("restore", "verify")), Job.status.in_(ACTIVE_STATUSES))))


def last_run_failed(project_id: int) -> bool:
    """Whether the project's newest finished backup run ended failed or interrupted (cancelled is a choice)."""
    status = db.session.scalar(select(Job.status).where(
        Job.project_id == project_id, Job.kind == "backup", Job.status.in_(FINAL_STATUSES)
    ).order_by(Job.id.desc()).limit(1))
    return status is not None and status not in GOOD_STATUSES and status != "cancelled"


def _local(at: datetime) -> datetime:
    """A stored (naive UTC) time in the server's time zone: a day, week or month is the operator's."""
    return at.replace(tzinfo=UTC).astimezone()


def plan_for(project: Project, now: datetime | None = None) -> list[tuple[Job, bool, list]]:
    jobs = _live_backups(project.id)
    used = _in_use([job.id for job in jobs])
    candidates = [Candidate(job, _local(job.finished_at or job.created_at), job.id in used) for job in jobs]
    return plan_prune(candidates, Policy.of(project), _local(now or utcnow()),
                      last_run_failed=last_run_failed(project.id))


# -- the prune ------------------------------------------------------------------------------------------------
@dataclass
class PruneResult:
    project: str
    dry_run: bool
    plan: list[tuple[Job, bool, list]] = field(default_factory=list)
    deleted_files: int = 0
    freed_bytes: int = 0

    @property
    def pruned(self) -> list[int]:
        return [job.id for job, keep, _ in self.plan if not keep]

    def keep_after_all(self, job_id: int, reason: str) -> None:
        self.plan = [(job, True, [(reason, None)]) if job.id == job_id else (job, keep, why)
                     for job, keep, why in self.plan]

    def to_dict(self) -> dict:
        return {"project": self.project, "dry_run": self.dry_run, "pruned": self.pruned,
                "deleted_files": self.deleted_files, "freed_bytes": self.freed_bytes,
                "backups": [{"job": job.id, "at": (job.finished_at or job.created_at).isoformat() + "Z",
                             "keep": keep, "reasons": reason_texts(why)} for job, keep, why in self.plan]}


def _delete_members(archive_id: int) -> None:
    while True:
        ids = list(db.session.scalars(select(ArchiveMember.id).where(ArchiveMember.archive_id == archive_id)
                                      .limit(MEMBER_BATCH)))
        if not ids:
            return
        db.session.execute(delete(ArchiveMember).where(ArchiveMember.id.in_(ids)))
        db.session.commit()


def _expire_archive(archive: Archive, now: datetime, result: PruneResult) -> None:
    """A directory archive loses its file and members; a tape archive keeps its rows as history."""
    if archive.location_kind == "directory":
        if archive.path and os.path.lexists(archive.path):
            os.unlink(archive.path)
            result.deleted_files += 1
            result.freed_bytes += archive.size or 0
        _delete_members(archive.id)
    else:
        recycle.expire_archive_files([archive.id], now)  # its tapes may be recycled once all else expired
    archive.expired_at = now
    db.session.commit()


def prune_project(project: Project, *, actor: str, dry_run: bool = False, now: datetime | None = None
                  ) -> PruneResult:
    now = now or utcnow()
    result = PruneResult(project.name, dry_run, plan_for(project, now))
    if dry_run or project.mode == "sync" or not result.pruned:
        return result
    name, pruned = project.name, result.pruned
    db.session.commit()  # never hold a transaction while deleting files
    for job_id in pruned:
        if _in_use([job_id]):  # a restore asked for since the plan was made: it wins
            result.keep_after_all(job_id, "in_use")
            continue
        archives = db.session.scalars(select(Archive).where(Archive.job_id == job_id,
                                                            Archive.expired_at.is_(None))).all()
        for archive in archives:
            _expire_archive(archive, now, result)
    if result.pruned:
        audit.record(actor, "retention.prune", name, project=name, details={
            "jobs": result.pruned, "deleted_files": result.deleted_files, "freed_bytes": result.freed_bytes})
        db.session.commit()
    return result


def delete_backups(project: Project, *, now: datetime | None = None) -> dict:
    """The project is removed with its backups: each archive expires as a prune expires it (a directory
    archive's file and members deleted, a tape archive and its tape files marked expired for recycling).
    The caller makes sure no job of the project (a restore or verify reading them) is active. Answers what
    went, for the caller's audit row."""
    now = now or utcnow()
    result = PruneResult(project.name, dry_run=False)
    job_ids = list(db.session.scalars(select(Job.id).where(Job.project_id == project.id, Job.kind == "backup")))
    archives = db.session.scalars(select(Archive).where(Archive.job_id.in_(job_ids),
                                                        Archive.expired_at.is_(None))).all()
    db.session.commit()  # never hold a transaction while deleting files
    for archive in archives:
        _expire_archive(archive, now, result)
    return {"archives": len(archives), "deleted_files": result.deleted_files, "freed_bytes": result.freed_bytes}


def projects_with_policy(name: str | None = None) -> list[Project]:
    query = select(Project).where(Project.mode != "sync").order_by(Project.name)
    if name is not None:
        query = query.where(Project.name == name)
    return [project for project in db.session.scalars(query) if not Policy.of(project).empty]


def after_backup(job_id: int, append_log) -> None:
    """The prune after a successful backup. It never fails the backup: an error is a log line and an audit row."""
    job = db.session.get(Job, job_id)
    project = db.session.get(Project, job.project_id) if job and job.project_id else None
    if project is None or job.status not in GOOD_STATUSES or Policy.of(project).empty or project.mode == "sync":
        return
    name = project.name
    try:
        result = prune_project(project, actor="retention")
    except Exception as exc:  # noqa: BLE001 - a prune problem must never turn a good backup into a failure
        db.session.rollback()
        log.warning("retention prune of %s failed: %s", name, exc)
        append_log(job_id, "INFO", f"retention: the prune failed ({exc}); nothing more was deleted")
        audit.record("retention", "retention.error", name, project=name, details={"error": str(exc)})
        db.session.commit()
        return
    if result.pruned:
        append_log(job_id, "INFO", f"retention: pruned backup(s) {', '.join(f'#{i}' for i in result.pruned)}, "
                                   f"{result.deleted_files} file(s), {result.freed_bytes} bytes freed")
        db.session.commit()


def pruned_jobs_filter():
    """A condition on ``Job``: the backup has no expired archive (restore and browse offer only these)."""
    return ~select(Archive.id).where(Archive.job_id == Job.id, Archive.expired_at.is_not(None)).exists()


def count_expired(job_id: int) -> int:
    return db.session.scalar(select(func.count(Archive.id)).where(Archive.job_id == job_id,
                                                                  Archive.expired_at.is_not(None))) or 0
