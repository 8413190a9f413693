"""The database goes away under a running job: SQLite locked by another process for longer than the busy
timeout, PostgreSQL restarted (its backends terminated, which is what a restart looks like to a client).

The worker pauses inside the compress stage (tests/faults/inject.py), the test breaks the database and lets the
job go on. A lock outlasting the busy timeout fails the job with a readable reason once the lock is gone (never
stuck ``running``); a restart between the worker's transactions is survived. The worker lives on either way.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.models import Archive, Job
from tests.conftest import build_hostile_tree, make_app
from tests.faults.support import (
    assert_clean_ending,
    enqueue,
    errors,
    fault_env,
    request_restore,
    run_job,
    sha256,
    start_worker,
    wait_paused,
)
from tests.integration.test_worker_processes import wait_for
from tests.treecompare import assert_same_tree

pytestmark = pytest.mark.slow
MiB = 1 << 20


class Output:
    """A process's output, read on a thread so the test can await a line."""

    def __init__(self, proc):
        self.proc, self.lines = proc, []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def __contains__(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def tail(self) -> str:
        return "".join(self.lines[-40:])


def paused_job(app, tmp_path, **extra: str):
    """A backup whose worker waits inside the compress stage until the test creates the resume file."""
    source = build_hostile_tree(tmp_path / "src")
    (source / "noise.bin").write_bytes(os.urandom(3 * MiB))
    projects.create(project_checks.ProjectSpec(name="db", sources=[str(source)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    job_id = enqueue("db")
    mark, resume = tmp_path / "paused", tmp_path / "resume"
    worker = start_worker(fault_env(app, pause_at="compress", skip=1, mark=mark,
                                    STAGEBACKUP_TEST_RESUME=str(resume), **extra))
    output = Output(worker)
    wait_paused(worker, mark)
    assert mark.exists(), output.tail()
    return job_id, worker, output, resume


def job_ended(job_id: int) -> Job | None:
    job = db.session.get(Job, job_id)
    db.session.refresh(job)
    return job if job.status not in ("queued", "running", "waiting_media") else None


def assert_clean_ending_of_a_success(app, job_id: int, tmp_path: Path) -> None:
    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
    assert (os.path.getsize(archive.path), sha256(archive.path)) == (archive.size, archive.sha256)
    target = Path(app.config["RESTORE_ROOTS"][0]) / "after"
    restore = run_job(app, request_restore(job_id, target))
    assert restore.status == "succeeded", (restore.error_message, errors(restore.id))
    source = tmp_path / "src"
    assert_same_tree(source, target / str(source).lstrip("/"))


def stop(worker, output) -> None:
    worker.terminate()
    worker.wait(timeout=30)
    output.thread.join(timeout=5)
    assert worker.returncode == 0, output.tail()


def test_sqlite_locked_longer_than_the_busy_timeout(app, tmp_path):
    job_id, worker, output, resume = paused_job(app, tmp_path, STAGEBACKUP_SQLITE_BUSY_TIMEOUT_MS="200")
    db.session.remove()
    locker = sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///"), isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        resume.touch()
        wait_for(lambda: f"job {job_id}: the database was unavailable (database is locked)" in output, timeout=60)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    job = wait_for(lambda: job_ended(job_id), timeout=60)
    assert worker.poll() is None, output.tail()  # the worker lives on
    stop(worker, output)
    job = assert_clean_ending(app, job_id, "failed", "DatabaseUnavailable", tmp_path / "dest")
    assert job.error_message.startswith("the database was unavailable"), job.error_message
    again = run_job(app, enqueue("db"))
    assert again.status == "succeeded", (again.error_message, errors(again.id))


@pytest.mark.postgres
def test_postgresql_restarted_mid_job(tmp_path, pg_database_url):
    """The worker holds no transaction while it works, and its pool pings a connection before reusing it: a
    restart between two of its transactions costs a reconnect, not the job."""
    app = make_app(tmp_path, pg_database_url)
    with app.app_context():
        job_id, worker, output, resume = paused_job(app, tmp_path)
        db.session.remove()
        db.engine.dispose()
        admin = create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:  # every other session of this database: the worker's, heartbeat and job
            killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        admin.dispose()
        assert killed >= 1
        resume.touch()
        job = wait_for(lambda: job_ended(job_id), timeout=60)
        assert worker.poll() is None, output.tail()
        stop(worker, output)
        assert (job.status, job.error_message) == ("succeeded", None), errors(job_id)
        assert_clean_ending_of_a_success(app, job_id, tmp_path)
        db.session.remove()
        db.engine.dispose()
