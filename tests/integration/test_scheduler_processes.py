"""Real `flask scheduler run` processes: one lease for two schedulers, edits from the CLI, skips, SIGTERM."""

import os
import re
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import AuditEvent, Job
from stagebackup.schedule import lease
from tests.conftest import flask_cmd, flask_env, run_flask

from .test_scheduler import scheduled
from .test_worker_processes import wait_for

LEASE_S = 3


class SchedulerProcess:
    def __init__(self, app, log_path):
        env = {**flask_env(app), "STAGEBACKUP_SCHEDULER_LEASE_S": str(LEASE_S),
               "STAGEBACKUP_SCHEDULER_POLL_INTERVAL_S": "0.2"}
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - open while the process runs
        self.proc = subprocess.Popen(flask_cmd("scheduler", "run"), env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def holds_lease(self) -> bool:
        current = lease.holder_of()
        db.session.rollback()  # every transaction here takes SQLite's write lock: never keep one open
        return current is not None and current[0].split(":")[1] == str(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._log.close()


@pytest.fixture
def schedulers(tmp_path):
    started = []

    def start(app):
        started.append(SchedulerProcess(app, tmp_path / f"scheduler-{len(started)}.log"))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def scheduled_jobs(name):
    return db.session.scalars(select(Job).where(Job.project_name == name, Job.trigger == "schedule")).all()


def test_two_schedulers_one_enqueues_and_the_other_takes_over_when_it_is_killed(any_db_app, tmp_path, schedulers):
    scheduled(tmp_path, "early", cron="* * * * *", due_minutes_ago=10)  # a missed run to catch up at once
    first, second = schedulers(any_db_app), schedulers(any_db_app)
    wait_for(lambda: len(scheduled_jobs("early")) == 1, timeout=30)
    holder = wait_for(lambda: next((p for p in (first, second) if p.holds_lease()), None))
    waiter = second if holder is first else first
    wait_for(lambda: "waiting: the lease is held by" in waiter.log, timeout=10)
    wait_for(lambda: "queued job" in holder.log, timeout=10)  # logged just after the commit the count saw
    assert "queued job" not in waiter.log and "skipped" not in waiter.log

    holder.proc.kill()
    holder.proc.wait(10)
    killed_at = time.monotonic()
    scheduled(tmp_path, "late", cron="* * * * *", due_minutes_ago=10)  # due while nobody enqueues
    wait_for(lambda: len(scheduled_jobs("late")) == 1, timeout=LEASE_S + 20)
    assert time.monotonic() - killed_at < LEASE_S + 10
    assert waiter.holds_lease() and "lease taken" in waiter.log
    assert len(scheduled_jobs("early")) == 1


def test_a_schedule_changed_with_the_cli_applies_within_five_seconds(app, tmp_path, schedulers):
    scheduled(tmp_path, "p", cron="0 2 * * *", tz="UTC")
    process = schedulers(app)
    wait_for(lambda: "project p: schedule 0 2 * * * (UTC), next run" in process.log, timeout=30)
    run_flask(app, "projects", "edit", "p", "--schedule", "*/5 * * * *", "--timezone", "Asia/Shanghai")
    changed_at = time.monotonic()
    line = wait_for(lambda: re.search(r"project p: schedule \*/5 \* \* \* \* \(Asia/Shanghai\), next run (\S+)",
                                      process.log), timeout=10)
    assert time.monotonic() - changed_at < 5
    assert int(line.group(1)[14:16]) % 5 == 0 and line.group(1).endswith("+08:00")


def test_a_due_run_while_a_job_is_queued_is_skipped_and_audited(app, tmp_path, schedulers):
    project = scheduled(tmp_path, "busy", cron="* * * * *", due_minutes_ago=10)
    manual = queue.enqueue(project, actor="test", remark="by hand")
    schedulers(app)
    event = wait_for(lambda: db.session.scalar(select(AuditEvent).where(AuditEvent.action == "schedule.skipped")),
                     timeout=30)
    assert (event.actor, event.target, event.details["job_id"]) == ("scheduler", "busy", manual.id)
    assert [job.id for job in db.session.scalars(select(Job))] == [manual.id]


def test_sigterm_stops_the_scheduler_within_a_second_and_hands_the_lease_back(app, tmp_path, schedulers):
    scheduled(tmp_path, "p", cron="* * * * *")
    process = schedulers(app)
    wait_for(lambda: "next run" in process.log, timeout=30)
    assert process.holds_lease()
    sent = time.monotonic()
    os.kill(process.proc.pid, signal.SIGTERM)
    assert process.proc.wait(5) == 0
    assert time.monotonic() - sent < 1.0
    assert lease.holder_of() is None and "lease released" in process.log
