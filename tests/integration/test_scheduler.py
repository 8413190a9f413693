"""The scheduler in-process: the lease's compare-and-set, edits picked up per tick, skipped and missed runs."""

import threading
from dataclasses import replace
from datetime import UTC, timedelta

import pytest
from sqlalchemy import func, select, update

from stagebackup import projects
from stagebackup.dbtypes import utcnow
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.models import AuditEvent, Job, Project
from stagebackup.schedule import lease
from stagebackup.schedule.service import Scheduler
from tests.conftest import make_app

from .test_worker_processes import wait_for
from .web_support import make_project


@pytest.fixture
def scheduler(app):
    service = Scheduler(app, holder="test-holder")
    service.aps.start(paused=True)
    yield service
    service.aps.shutdown(wait=False)


def scheduled(tmp_path, name="p", cron="0 2 * * *", tz="UTC", due_minutes_ago=None):
    """A scheduled project; ``due_minutes_ago``: as if it was last changed that long ago (runs were missed)."""
    project = make_project(tmp_path, name, schedule_cron=cron, schedule_timezone=tz)
    if due_minutes_ago is not None:
        db.session.execute(update(Project).where(Project.id == project.id)
                           .values(updated_at=utcnow() - timedelta(minutes=due_minutes_ago)))
        db.session.commit()
    return project


def audit_actions(action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_the_lease_has_one_holder_until_it_expires(any_db_app):
    start = utcnow()
    at = lambda seconds: start + timedelta(seconds=seconds)  # noqa: E731
    assert lease.acquire("a", 30, now=at(0))
    assert not lease.acquire("b", 30, now=at(10))
    assert lease.acquire("a", 30, now=at(10))  # renewed: now held until 40 s
    assert not lease.acquire("b", 30, now=at(39))
    assert lease.holds("a", now=at(39)) and not lease.holds("b", now=at(39))
    assert lease.acquire("b", 30, now=at(41))  # expired: taken over
    assert lease.holds("b", now=at(41)) and not lease.holds("a", now=at(41))
    assert not lease.acquire("a", 30, now=at(42))
    lease.release("a")  # not the holder: changes nothing
    assert lease.holder_of()[0] == "b"
    lease.release("b")
    assert lease.holder_of() is None and lease.acquire("a", 30)


def test_an_edit_is_picked_up_at_the_next_tick_without_a_restart(scheduler, tmp_path):
    project = scheduled(tmp_path)
    scheduler.tick()
    assert scheduler.holding and scheduler.next_run(project.id).strftime("%H:%M") == "02:00"
    projects.update("p", replace(projects.spec_of(project), schedule_cron="30 4 * * *",
                                 schedule_timezone="Asia/Shanghai"), actor="test")
    scheduler.tick()
    following = scheduler.next_run(project.id)
    assert following.strftime("%H:%M %z") == "04:30 +0800" and following.astimezone(UTC).strftime("%H:%M") == "20:30"
    projects.update("p", replace(projects.spec_of(project), schedule_enabled=False), actor="test")
    scheduler.tick()
    assert scheduler.next_run(project.id) is None
    projects.update("p", replace(projects.spec_of(project), schedule_enabled=True), actor="test")
    scheduler.tick()
    assert scheduler.next_run(project.id) is not None
    projects.remove("p", actor="test")
    scheduler.tick()
    assert scheduler.next_run(project.id) is None and scheduler.aps.get_jobs() == []


def test_a_run_due_while_the_previous_job_is_active_is_skipped_and_audited(scheduler, tmp_path):
    project = scheduled(tmp_path)
    scheduler.tick()
    assert scheduler.fire(project.id) == "queued"
    job = db.session.scalar(select(Job))
    assert (job.trigger, job.status, job.remark) == ("schedule", "queued", None)
    assert scheduler.fire(project.id) == "skipped"
    queue.claim(workers.register_worker("h", 1, None))
    assert scheduler.fire(project.id) == "skipped"
    skipped = audit_actions("schedule.skipped")
    assert [(e.actor, e.target, e.details["job_id"], e.details["status"]) for e in skipped] == [
        ("scheduler", "p", job.id, "queued"), ("scheduler", "p", job.id, "running")]
    assert db.session.scalar(select(func.count(Job.id))) == 1


def test_no_run_is_queued_without_the_lease(scheduler, tmp_path):
    project = scheduled(tmp_path)
    assert lease.acquire("someone-else", 30)
    scheduler.tick()
    assert not scheduler.holding and scheduler.aps.get_jobs() == []
    assert scheduler.fire(project.id) == "no-lease"
    assert db.session.scalar(select(func.count(Job.id))) == 0


def run_in_thread(service):
    stop = threading.Event()
    thread = threading.Thread(target=lambda: service.app.app_context().push() or service.run(stop))
    thread.start()
    return stop, thread


def test_runs_missed_within_the_grace_time_are_coalesced_into_one(app, tmp_path):
    project = scheduled(tmp_path, cron="* * * * *", due_minutes_ago=10)  # ten runs missed
    service = Scheduler(app, holder="test-holder")
    stop, thread = run_in_thread(service)
    try:
        job = wait_for(lambda: db.session.scalar(select(Job)), timeout=20)
        wait_for(lambda: (service.next_run(project.id) or utcnow()).replace(tzinfo=None) > utcnow(), timeout=20)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert job.trigger == "schedule" and db.session.scalar(select(func.count(Job.id))) == 1
    assert audit_actions("schedule.skipped") == [] and audit_actions("schedule.missed") == []
    assert lease.holder_of() is None  # handed back on stop


def test_a_run_missed_by_more_than_the_grace_time_is_dropped_and_audited(tmp_path):
    app = make_app(tmp_path, SCHEDULE_MISFIRE_GRACE_S=1)
    with app.app_context():
        due = utcnow() - timedelta(minutes=3)
        project = scheduled(tmp_path, cron=f"{due.minute} {due.hour} * * *", due_minutes_ago=10)
        service = Scheduler(app, holder="test-holder")
        stop, thread = run_in_thread(service)
        try:
            missed = wait_for(lambda: audit_actions("schedule.missed"), timeout=20)
        finally:
            stop.set()
            thread.join(5)
        assert missed[0].target == "p" and missed[0].details["project_id"] == project.id
        assert missed[0].details["due"].startswith(due.strftime("%Y-%m-%dT%H:%M"))
        assert db.session.scalar(select(func.count(Job.id))) == 0
        db.session.remove()
        db.engine.dispose()
