"""Real `flask worker run` processes: kill -9, SIGTERM, cancel, and many workers on one queue."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.models import Archive, Job, JobLog
from tests.conftest import flask_cmd, flask_env, make_app, run_flask


def wait_for(predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        finally:
            db.session.rollback()  # never hold SQLite's lock while the worker needs it
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def slow_project(tmp_path, name="slow"):
    """A source that takes many seconds to compress: a large sparse file."""
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / "small.txt").write_text("small")
    with open(src / "disk.img", "wb") as fh:
        fh.truncate(8 << 30)
    spec = project_checks.ProjectSpec(name=name, sources=[str(src)], dest_dir=str(tmp_path / "dest"))
    return projects.create(spec, actor="test")


def start_worker(app, *args):
    return subprocess.Popen(flask_cmd("worker", "run", *args), env=flask_env(app),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def compressing(job_id, cache_dir):
    """The worker is writing the staged archive of this job."""
    job = db.session.get(Job, job_id)
    db.session.refresh(job)
    staged = list(Path(cache_dir, f"job-{job_id}").glob("*.tar.gz"))
    return job.status == "running" and staged and staged[0].stat().st_size > 0 and staged[0]


def test_worker_killed_mid_job_is_recovered_as_interrupted_by_the_next_worker(app, tmp_path):
    job_id = queue.enqueue(slow_project(tmp_path), actor="test").id
    db.session.commit()
    worker = start_worker(app)
    try:
        staged = wait_for(lambda: compressing(job_id, app.config["CACHE_DIR"]))
    finally:
        worker.kill()
        worker.wait()
    assert staged.exists()  # the dead worker left its partial archive behind

    result = run_flask(app, "worker", "run", "--burst")
    assert result.returncode == 0, result.stderr
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "interrupted" and job.error_class == "WorkerLost"
    assert "died" in job.error_message
    assert not staged.exists() and not staged.parent.exists()
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    steps = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert steps == {"scan": "done", "compress": "failed", "copy": "pending", "finalize": "pending"}


def test_sigterm_stops_the_job_at_the_next_file_and_exits_cleanly(app, tmp_path):
    job_id = queue.enqueue(slow_project(tmp_path), actor="test").id
    db.session.commit()
    worker = start_worker(app)
    staged = wait_for(lambda: compressing(job_id, app.config["CACHE_DIR"]))
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "interrupted" and job.error_class == "WorkerStopping"
    assert not staged.exists()
    assert job.finished_at is not None


def test_cancel_stops_a_running_job_and_removes_its_output(app, tmp_path):
    job_id = queue.enqueue(slow_project(tmp_path), actor="test").id
    db.session.commit()
    worker = start_worker(app, "--burst")
    staged = wait_for(lambda: compressing(job_id, app.config["CACHE_DIR"]))
    result = run_flask(app, "jobs", "cancel", str(job_id), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "cancel requested" in result.stdout
    output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "cancelled" and job.error_message == "cancelled by the operator"
    assert not staged.exists() and db.session.query(Archive).filter_by(job_id=job.id).count() == 0


def run_many(app, tmp_path, n_jobs, n_workers):
    src = tmp_path / "tiny"
    src.mkdir()
    (src / "a.txt").write_text("a" * 100)
    ids = []
    for i in range(n_jobs):
        spec = project_checks.ProjectSpec(name=f"p{i:03d}", sources=[str(src)], dest_dir=str(tmp_path / "dest"))
        ids.append(queue.enqueue(projects.create(spec, actor="test"), trigger="cli", actor="test").id)
    db.session.remove()
    workers = [start_worker(app, "--burst") for _ in range(n_workers)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * n_workers, outputs[-1][-2000:]
    jobs = db.session.query(Job).filter(Job.id.in_(ids)).all()
    assert sorted(j.status for j in jobs) == ["succeeded"] * n_jobs
    assert all(j.attempts == 1 for j in jobs)
    starts = db.session.query(JobLog.job_id).filter(JobLog.message.like("started by worker%")).all()
    assert sorted(job_id for (job_id,) in starts) == sorted(ids)  # each job started exactly once
    assert db.session.query(Archive).count() == n_jobs
    assert len(os.listdir(tmp_path / "dest")) == n_jobs
    return {j.worker_id for j in jobs}


@pytest.mark.slow
def test_four_workers_on_a_database_server_run_200_jobs_exactly_once(tmp_path, server_database_url):
    app = make_app(tmp_path, server_database_url)
    with app.app_context():
        used = run_many(app, tmp_path, n_jobs=200, n_workers=4)
        assert len(used) > 1
        db.session.remove()
        db.engine.dispose()


@pytest.mark.slow
def test_three_workers_on_sqlite_share_the_queue_safely(app, tmp_path):
    run_many(app, tmp_path, n_jobs=30, n_workers=3)
