"""Stuck versus slow, and a job's time limit, with a source read that hangs.

While the read hangs the worker stays alive (``heartbeat_at`` moves) and nothing advances (``progress_at``
stays): the card says "no progress for N min", not "worker not responding". Past the project's time limit
the worker's heartbeat thread ends the job ``failed`` with the reason, although the job's thread is still
stuck; when the read returns, that thread stops at its next checkpoint and changes nothing.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import select

from stagebackup import project_checks, projects
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import Job, JobLog, JobStage
from stagebackup.pipeline import source
from tests.conftest import make_app


def wait_for(condition, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def app(tmp_path):
    application = make_app(tmp_path, HEARTBEAT_INTERVAL_S=0.1, STALL_WARNING_S=0.5)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def hanging_read(monkeypatch):
    """Reads of files named ``hang*`` block until released (like a dead NFS server), then go on."""
    hung, release = threading.Event(), threading.Event()
    real_read = source.ExactReader.read

    def read(self, n=-1):
        if os.path.basename(self.path).startswith(b"hang"):
            hung.set()
            release.wait(60)
        return real_read(self, n)

    monkeypatch.setattr(source.ExactReader, "read", read)
    yield hung, release
    release.set()


def project_with_a_hanging_file(tmp_path, **kw):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 10_000)
    (src / "hang.bin").write_bytes(os.urandom(10_000))
    spec = project_checks.ProjectSpec(name="slow", sources=[str(src)], dest_dir=str(tmp_path / "dest"), **kw)
    return projects.create(spec, actor="test")


def test_a_hanging_read_shows_as_stalled_then_the_time_limit_fails_the_job(app, tmp_path, hanging_read):
    hung, release = hanging_read
    project = project_with_a_hanging_file(tmp_path, job_timeout_s=60)
    job_id = queue.enqueue(project, actor="test").id
    assert db.session.get(Job, job_id).timeout_s == 60  # copied from the project when queued
    # A minute is the shortest limit an operator can set; the test shortens this one job's.
    db.session.get(Job, job_id).timeout_s = 3
    db.session.commit()
    seen = {}

    def card_if_stalled(client):
        page = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
        return page if 'data-figure="stalled"' in page else None

    def status():
        value = db.session.scalar(select(Job.status).where(Job.id == job_id))
        db.session.rollback()
        return value

    def observe():
        with app.app_context():
            try:
                client = app.test_client()
                hung.wait(30)
                seen["stalled_card"] = wait_for(lambda: card_if_stalled(client))
                first = db.session.get(Job, job_id)
                seen["while_hung"] = (first.status, first.heartbeat_at, first.progress_at)
                db.session.rollback()
                wait_for(lambda: status() == "failed")
                later = db.session.get(Job, job_id)
                seen["beats_moved"] = later.heartbeat_at > seen["while_hung"][1]
                seen["progress_stayed"] = later.progress_at == seen["while_hung"][2]
                db.session.rollback()
            finally:
                release.set()
                db.session.remove()

    observer = threading.Thread(target=observe)
    observer.start()
    assert Worker(app, burst=True).run() == 0
    observer.join(60)

    assert seen["while_hung"][0] == "running"
    assert "分钟无进展" in seen["stalled_card"] and "无响应" not in seen["stalled_card"]
    assert seen["beats_moved"] and seen["progress_stayed"]
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "failed" and job.error_class == "JobTimedOut"
    assert "time limit" in job.error_message
    errors = db.session.scalars(select(JobLog.message).where(JobLog.job_id == job_id, JobLog.tag == "ERROR")).all()
    assert any("time limit" in line for line in errors)
    failed = db.session.scalars(select(JobStage.code).where(JobStage.job_id == job_id,
                                                            JobStage.failed_at.is_not(None))).all()
    assert "compress" in failed
    # Nothing half-written is left: not in the destination, not in the cache.
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    assert os.listdir(app.config["CACHE_DIR"]) == []
    page = app.test_client().get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert "time limit" in page or "时限" in page


def test_a_job_that_keeps_moving_is_not_stalled(app, tmp_path):
    spec = project_checks.ProjectSpec(name="quick", sources=[str(tmp_path)], dest_dir=str(tmp_path.parent / "d"))
    (tmp_path / "f").write_bytes(b"x")
    job_id = queue.enqueue(projects.create(spec, actor="test"), actor="test").id
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "succeeded" and job.progress_at is not None and job.progress_at >= job.started_at


@pytest.mark.parametrize("seconds", [0, 59, 30 * 24 * 3600 + 60])
def test_the_time_limit_is_range_checked(app, tmp_path, seconds):
    spec = project_checks.ProjectSpec(name="p", sources=[str(tmp_path)], dest_dir=str(tmp_path.parent / "d"),
                                job_timeout_s=seconds)
    with pytest.raises(ValidationError) as raised:
        projects.create(spec, actor="test")
    assert raised.value.field == "job_timeout_min"


def test_the_cli_sets_the_time_limit_in_minutes(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["projects", "add", "t", "--source", str(tmp_path), "--dest-dir",
                                 str(tmp_path.parent / "d"), "--job-timeout-min", "90", "--json"])
    assert result.exit_code == 0, result.output
    assert '"job_timeout_min": 90' in result.output
    bad = runner.invoke(args=["projects", "add", "u", "--source", str(tmp_path), "--dest-dir",
                              str(tmp_path.parent / "d"), "--job-timeout-min", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
