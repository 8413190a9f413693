"""Workers' liveness: registration, the heartbeat, and what happens to the jobs of a worker that stopped
answering (interrupted) or of a job past its time limit (failed). The queue itself (enqueue, claim, finish,
cancel) is ``queue.py``; this module ends jobs only through its ``close``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..dbtypes import is_mysql, utcnow
from ..errors import N_, fill
from ..extensions import db
from ..models import FAILED, INTERRUPTED, RUNNING, WAITING_MEDIA, Job, Worker
from . import state
from .queue import append_log, close

log = logging.getLogger(__name__)

TIMED_OUT = N_("the job ran longer than its time limit of %(minutes)s min")


def register_worker(host: str, pid: int, drive: str | None) -> int:
    worker = Worker(host=host, pid=pid, drive=drive)
    db.session.add(worker)
    db.session.flush()
    worker_id = worker.id
    db.session.commit()
    return worker_id


def heartbeat(worker_id: int) -> None:
    now = utcnow()
    db.session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))
    mine = (Job.worker_id == worker_id, Job.status.in_((RUNNING, WAITING_MEDIA)))
    if is_mysql(db.session.get_bind().dialect.name):
        # InnoDB: the job's thread may hold a shared lock on its row (a foreign key check) and then update it;
        # an update waiting here for that row would deadlock with it. A row busy now gets the next beat.
        ids = db.session.scalars(select(Job.id).where(*mine).with_for_update(skip_locked=True)).all()
        mine = (Job.id.in_(ids),)
    db.session.execute(update(Job).where(*mine).values(heartbeat_at=now))
    db.session.commit()


def stop_worker(worker_id: int) -> None:
    db.session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=utcnow()))
    db.session.commit()


def recover_stale(
    *, host: str, stale_after_s: float, pid_alive: Callable[[int], bool], now: datetime | None = None
) -> list[int]:
    """Mark running jobs whose worker died as interrupted and delete their partial outputs.

    A worker is dead when it is on this host and its pid is gone, or when it has not heartbeaten for
    ``stale_after_s`` (any host).
    """
    now = now or utcnow()
    stale_before = now - timedelta(seconds=stale_after_s)
    rows = db.session.execute(
        select(Job, Worker)
        .join(Worker, Worker.id == Job.worker_id, isouter=True)
        .where(Job.status.in_((RUNNING, WAITING_MEDIA)))
        # Several workers recover at once on PostgreSQL: each stale job is taken by one of them.
        .with_for_update(skip_locked=True, of=Job)
        .execution_options(populate_existing=True)
    ).all()
    recovered = []
    for job, worker in rows:
        if worker is not None and worker.host == host and not pid_alive(worker.pid):
            reason = f"worker {worker.id} (pid {worker.pid}) died"
        elif (job.heartbeat_at or job.started_at or now) < stale_before:
            silent_min = (now - (job.heartbeat_at or job.started_at)).total_seconds() / 60
            reason = f"worker {job.worker_id} silent for {silent_min:.0f} min"
        else:
            continue
        removed = close(job, INTERRUPTED, "WorkerLost", reason, now)
        append_log(job.id, "ERROR", f"interrupted: {reason}; removed {len(removed)} partial output(s)")
        if worker is not None and worker.stopped_at is None:
            worker.stopped_at = now
        recovered.append(job.id)
    db.session.commit()
    return recovered


def expire_overdue(worker_id: int, now: datetime | None = None) -> list[int]:
    """End this worker's jobs that ran past their time limit as failed, with the reason.

    Called by the worker's heartbeat thread, so it works even when the job's own thread is stuck in a read
    that never returns; that thread stops at its next checkpoint (its reporter sees the job ended).
    """
    now = now or utcnow()
    jobs = db.session.scalars(
        select(Job).where(Job.worker_id == worker_id, Job.status.in_((RUNNING, WAITING_MEDIA)),
                          Job.timeout_s.is_not(None), Job.started_at.is_not(None))
    ).all()
    expired = []
    for job in jobs:
        if job.started_at + timedelta(seconds=job.timeout_s) > now:
            continue
        values = {"minutes": f"{job.timeout_s / 60:g}"}
        reason = fill(TIMED_OUT, values)
        state.fail_open_stages(job.id, reason)
        append_log(job.id, "ERROR", f"failed: {reason}")
        close(job, FAILED, "JobTimedOut", reason, now)
        job.error_template, job.error_values = TIMED_OUT, values
        expired.append(job.id)
    db.session.commit()
    return expired
