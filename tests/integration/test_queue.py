"""Queue statements against real SQLite, PostgreSQL and MariaDB."""

from datetime import timedelta

import pytest

from stagebackup.dbtypes import utcnow
from stagebackup.errors import AlreadyQueued
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.models import Job, JobLog, Project


def add_project(name="p", **fields):
    project = Project(name=name, sources=["/srv"], includes=[], excludes=[], dest_kind="directory",
                      dest_path="/backups", **fields)
    db.session.add(project)
    db.session.commit()
    return project


def test_one_queued_job_per_project(any_db_app):
    project = add_project()
    first = queue.enqueue(project, remark="首次全量", actor="test")
    with pytest.raises(AlreadyQueued, match=f"#{first.id}"):
        queue.enqueue(project, actor="test")
    worker = workers.register_worker("host", 1, None)
    assert queue.claim(worker) == first.id
    second = queue.enqueue(project, actor="test")  # the slot is free again once the first runs
    assert second.status == "queued" and first.remark == "首次全量"


def test_claim_takes_the_oldest_runnable_job_once(any_db_app):
    a, b, c = add_project("a"), add_project("b"), add_project("c")
    ja, jb, jc = queue.enqueue(a, actor="test"), queue.enqueue(b, actor="test"), queue.enqueue(c, actor="test")
    db.session.get(Job, jb.id).run_after = utcnow() + timedelta(hours=1)  # a retry waiting its turn
    db.session.commit()
    worker = workers.register_worker("host", 1, None)
    assert queue.claim(worker) == ja.id
    assert queue.claim(worker) == jc.id
    assert queue.claim(worker) is None
    job = db.session.get(Job, ja.id)
    db.session.refresh(job)
    assert (job.status, job.worker_id, job.attempts) == ("running", worker, 1)
    assert db.session.query(JobLog).filter_by(job_id=ja.id).filter(JobLog.message.like("started by%")).count() == 1


def test_one_running_job_per_drive(any_db_app):
    jobs = []
    for name, drive in (("a", "vtape0"), ("b", "vtape0"), ("c", "vtape1")):
        job = queue.enqueue(add_project(name), actor="test")
        job.drive = drive
        jobs.append(job)
    db.session.commit()
    w1, w2 = workers.register_worker("h", 1, None), workers.register_worker("h", 2, "vtape0")
    assert queue.claim(w1) == jobs[0].id
    assert queue.claim(w2, "vtape0") is None  # vtape0 is busy and vtape1 is not this worker's
    assert queue.claim(w1) == jobs[2].id
    queue.finish(jobs[0].id, "succeeded")
    assert queue.claim(w2, "vtape0") == jobs[1].id


def test_cancel_queued_ends_it_and_cancel_running_sets_the_flag(any_db_app):
    queued = queue.enqueue(add_project("a"), actor="test")
    running = queue.enqueue(add_project("b"), actor="test")
    worker = workers.register_worker("h", 1, None)
    assert queue.claim(worker) == queued.id
    assert queue.request_cancel(queued.id, actor="test") == "running"
    assert db.session.get(Job, queued.id).cancel_requested is True
    assert queue.request_cancel(running.id, actor="test") == "cancelled"
    assert queue.claim(worker) is None


def test_recovery_interrupts_jobs_of_dead_or_silent_workers_and_removes_partials(any_db_app, tmp_path):
    jobs = [queue.enqueue(add_project(n), actor="test") for n in ("dead", "silent", "alive")]
    dead = workers.register_worker("this-host", 111, None)
    silent = workers.register_worker("other-host", 222, None)
    alive = workers.register_worker("this-host", 333, None)
    for job, worker in zip(jobs, (dead, silent, alive), strict=True):
        assert queue.claim(worker) == job.id
    partial = tmp_path / "job-1.partial"
    partial.write_bytes(b"half")
    queue.register_partial_output(jobs[0].id, str(partial))
    db.session.get(Job, jobs[1].id).heartbeat_at = utcnow() - timedelta(minutes=5)
    db.session.commit()

    recovered = workers.recover_stale(host="this-host", stale_after_s=120, pid_alive=lambda pid: pid != 111)
    assert sorted(recovered) == sorted([jobs[0].id, jobs[1].id])
    assert not partial.exists()
    states = {j.id: db.session.get(Job, j.id) for j in jobs}
    assert states[jobs[0].id].status == "interrupted" and "died" in states[jobs[0].id].error_message
    assert "silent for 5 min" in states[jobs[1].id].error_message
    assert states[jobs[2].id].status == "running"


def test_retry_requeues_with_a_delay_and_clears_stages(any_db_app):
    job = queue.enqueue(add_project(), actor="test")
    worker = workers.register_worker("h", 1, None)
    queue.claim(worker)
    job = db.session.get(Job, job.id)
    assert queue.requeue_for_retry(job, 30, "Device or resource busy") is True
    db.session.refresh(job)
    assert job.status == "queued" and job.run_after > utcnow() + timedelta(seconds=20)
    assert "retrying in 30 s" in job.error_message
    assert queue.claim(worker) is None  # not before its time
    assert queue.claim(worker, now=utcnow() + timedelta(seconds=31)) == job.id


def test_a_job_another_worker_is_recovering_is_skipped(tmp_path, server_database_url):
    from sqlalchemy import create_engine, text

    from tests.conftest import make_app

    app = make_app(tmp_path, server_database_url)
    with app.app_context():
        job = queue.enqueue(add_project(), actor="test")
        dead = workers.register_worker("this-host", 111, None)
        assert queue.claim(dead) == job.id
        other = create_engine(server_database_url)
        with other.connect() as conn:  # another worker is in the middle of recovering this job
            conn.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": job.id})
            assert workers.recover_stale(host="this-host", stale_after_s=120, pid_alive=lambda pid: False) == []
            conn.rollback()
        assert workers.recover_stale(host="this-host", stale_after_s=120, pid_alive=lambda pid: False) == [job.id]
        logs = db.session.query(JobLog).filter_by(job_id=job.id, tag="ERROR").count()
        assert logs == 1
        other.dispose()
        db.session.remove()
        db.engine.dispose()
