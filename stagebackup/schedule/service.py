"""The scheduler process: enqueue a job for each project at its schedule's times; it never runs them.

APScheduler 3 (a paused-until-leased ``BackgroundScheduler``) keeps one cron job per scheduled project. The
main loop, once per ``SCHEDULER_POLL_INTERVAL_S``:

- takes or renews the database lease (``lease``): only its holder's APScheduler runs, so one scheduler
  enqueues however many are started; losing the lease removes every job;
- reads a cheap fingerprint of the projects table (count, max ``updated_at``) and, when it changed,
  reconciles the APScheduler jobs with the projects' schedules: edits in the page or the CLI apply within
  a poll, without a restart.

A project's first run time counts from its last scheduled job or its last edit, whichever is later, so runs
missed while no scheduler held the lease are seen as missed. APScheduler then coalesces them into one
(``coalesce=True``), run at once if the latest is at most ``SCHEDULE_MISFIRE_GRACE_S`` old, otherwise
dropped and recorded as ``schedule.missed``. A run due while the project's previous job is still queued or
running is skipped and recorded as ``schedule.skipped``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from ..errors import AlreadyQueued, ValidationError
from ..extensions import db
from ..jobs import queue
from ..models import Job, Project
from ..notify.courier import Courier
from . import cron, lease

log = logging.getLogger(__name__)
ACTOR = "scheduler"


def _job_id(project_id: int) -> str:
    return f"project-{project_id}"


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


class Scheduler:
    def __init__(self, app: Flask, holder: str | None = None):
        self.app = app
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_s = float(app.config["SCHEDULER_LEASE_S"])
        self.poll_s = float(app.config["SCHEDULER_POLL_INTERVAL_S"])
        self.holding = False
        self._renewed_at = float("-inf")  # time.monotonic() of the last successful take or renewal
        self._waiting_logged = False
        self._fingerprint: tuple | None = None
        self._schedules: dict[int, tuple[str, str]] = {}  # project id -> (cron, time zone) of its APScheduler job
        self.aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1,
                          # APScheduler wants a positive number: 0 behaves as 1 (a missed run is dropped).
                          "misfire_grace_time": max(1, int(app.config["SCHEDULE_MISFIRE_GRACE_S"]))},
        )
        self.aps.add_listener(self._on_missed, EVENT_JOB_MISSED)

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set (SIGTERM): then stop at once and hand the lease back."""
        self.aps.start(paused=True)
        log.info("scheduler %s started", self.holder)
        courier = Courier(self.app, lambda: self.holding).start(stop)  # notifications, off this loop
        try:
            while not stop.is_set():
                self.tick()
                stop.wait(self.poll_s)
        finally:
            self.aps.shutdown(wait=False)
            courier.join(timeout=10)
            if self.holding:
                self._release()

    def tick(self) -> None:
        try:
            if not self.holding or time.monotonic() - self._renewed_at >= self.lease_s / 3:
                self._take_or_renew()
            if self.holding:
                fingerprint = tuple(db.session.execute(
                    select(func.count(Project.id), func.max(Project.updated_at))).one())
                if fingerprint != self._fingerprint:
                    self.reconcile()
                    self._fingerprint = fingerprint
        except SQLAlchemyError:
            log.exception("database error; trying again")
            if self.holding and time.monotonic() - self._renewed_at >= self.lease_s:
                self._drop("the lease could not be renewed in time")
        finally:
            db.session.rollback()  # end the read transaction: SQLite writers must not wait on it

    def _take_or_renew(self) -> None:
        held = lease.acquire(self.holder, self.lease_s)
        if held:
            self._renewed_at = time.monotonic()
            if not self.holding:
                self.holding, self._fingerprint = True, None
                log.info("lease taken: this scheduler enqueues scheduled runs")
                self.aps.resume()
        elif self.holding:
            self._drop("lease lost to another scheduler")
        elif not self._waiting_logged:
            self._waiting_logged = True
            current = lease.holder_of()
            log.info("waiting: the lease is held by %s", current[0] if current else "another scheduler")

    def _drop(self, why: str) -> None:
        self.holding = False
        self.aps.pause()
        self.aps.remove_all_jobs()
        self._schedules.clear()
        log.warning("%s: enqueuing nothing until it is taken again", why)

    def _release(self) -> None:
        try:
            lease.release(self.holder)
            log.info("lease released")
        except SQLAlchemyError:
            log.exception("could not release the lease; it expires in %s s", self.lease_s)

    # -- schedules -------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Make the APScheduler jobs match the projects' enabled schedules."""
        wanted = {p.id: p for p in db.session.scalars(
            select(Project).where(Project.schedule_cron.is_not(None), Project.schedule_enabled.is_(True)))}
        for project_id, schedule in list(self._schedules.items()):
            project = wanted.get(project_id)
            if project is None or (project.schedule_cron, project.schedule_timezone) != schedule:
                self.aps.remove_job(_job_id(project_id))
                del self._schedules[project_id]
                if project is None:
                    log.info("project #%s: no schedule", project_id)
        for project_id, project in wanted.items():
            if project_id not in self._schedules:
                self._add(project)

    def _add(self, project: Project) -> None:
        expr, tz = project.schedule_cron, project.schedule_timezone or cron.server_timezone()
        try:
            trigger = cron.trigger(expr, tz)
        except ValidationError as exc:  # a row written by hand or by an older version
            log.warning("project %s: schedule ignored: %s", project.name, exc)
            return
        since = self._last_run(project)
        first = trigger.get_next_fire_time(since, since)
        if first is None:
            log.warning("project %s: schedule %r never runs", project.name, expr)
            return
        self.aps.add_job(self._fire, trigger=trigger, args=[project.id], id=_job_id(project.id), name=project.name,
                         next_run_time=first, replace_existing=True)
        self._schedules[project.id] = (expr, project.schedule_timezone)
        log.info("project %s: schedule %s (%s), next run %s", project.name, expr, tz, first.isoformat())

    def _last_run(self, project: Project) -> datetime:
        last_job = db.session.scalar(
            select(func.max(Job.created_at)).where(Job.project_id == project.id, Job.trigger == "schedule"))
        return _aware(max(moment for moment in (last_job, project.updated_at) if moment is not None))

    def next_run(self, project_id: int) -> datetime | None:
        job = self.aps.get_job(_job_id(project_id))
        return job.next_run_time if job is not None else None

    # -- runs ------------------------------------------------------------------------------------------
    def _fire(self, project_id: int) -> None:
        """APScheduler's job (on its executor thread)."""
        with self.app.app_context():
            try:
                self.fire(project_id)
            except Exception:
                log.exception("project #%s: the scheduled run could not be queued", project_id)
                db.session.rollback()

    def fire(self, project_id: int) -> str:
        """Queue one scheduled run; returns what happened: queued, skipped, no-lease or unscheduled."""
        if not lease.holds(self.holder):
            log.warning("project #%s: run not queued: the lease is not held", project_id)
            return "no-lease"
        project = db.session.get(Project, project_id)
        if project is None or not (project.schedule_cron and project.schedule_enabled):
            return "unscheduled"
        active = queue.active_job_for_project(project.id)
        if active is None:
            try:
                job = queue.enqueue(project, actor=ACTOR, trigger="schedule")
            except AlreadyQueued:  # queued in between, e.g. by a person pressing 立即运行
                active = queue.active_job_for_project(project_id)
            else:
                log.info("project %s: queued job #%s", project.name, job.id)
                return "queued"
        details = {"project_id": project.id, "job_id": active.id if active else None,
                   "status": active.status if active else None}
        audit.record(ACTOR, "schedule.skipped", project.name, details=details)
        db.session.commit()
        log.info("project %s: scheduled run skipped: job #%s is still %s", project.name, details["job_id"],
                 details["status"])
        return "skipped"

    def _on_missed(self, event: JobExecutionEvent) -> None:
        """A run (or several, coalesced) missed by more than the grace time: dropped, and said so."""
        project_id = int(event.job_id.removeprefix("project-"))
        with self.app.app_context():
            try:
                project = db.session.get(Project, project_id)
                audit.record(ACTOR, "schedule.missed", project.name if project else None,
                             details={"project_id": project_id, "due": event.scheduled_run_time.isoformat()})
                db.session.commit()
            except SQLAlchemyError:
                log.exception("could not record the missed run of project #%s", project_id)
                db.session.rollback()
        log.warning("project #%s: the run due at %s was missed by more than the grace time: dropped",
                    project_id, event.scheduled_run_time.isoformat())
