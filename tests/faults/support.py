"""Running a worker process with faults (inject.py), killing it where it paused, and the invariants every
fault must leave: a defined ending, nothing partial under a final name, an empty cache, void tape files, no
incomplete archive in the catalog."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

from sqlalchemy import select

from stagebackup import projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, Job, JobLog
from stagebackup.restore import service
from stagebackup.tape_models import TapeFile
from tests.conftest import REPO, flask_cmd, flask_env
from tests.faults import inject
from tests.integration.test_worker_processes import wait_for

SITE = Path(__file__).resolve().parent / "site"


def fault_env(app, *, pause_at: str | None = None, skip: int = 0, faults: tuple[str, ...] = (),
              mark: Path | None = None, **extra: str) -> dict:
    env = flask_env(app)
    env["PYTHONPATH"] = f"{SITE}{os.pathsep}{REPO}"
    env["STAGEBACKUP_CACHE_DIR"] = app.config["CACHE_DIR"]
    env.update({f"STAGEBACKUP_{k}": str(v) for k, v in app.config.items() if k.startswith("VTAPE_")})
    if pause_at:
        env.update({inject.PAUSE_AT: pause_at, inject.PAUSE_SKIP: str(skip), inject.PAUSE_MARK: str(mark)})
    if faults:
        env[inject.FAULT] = ",".join(faults)
    env.update(extra)
    return env


def start_worker(env: dict, *args: str) -> subprocess.Popen:
    db.session.rollback()  # never hold SQLite's lock while the worker needs it
    return subprocess.Popen(flask_cmd("worker", "run", *args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_paused(worker: subprocess.Popen, mark: Path, timeout: float = 90.0) -> None:
    """Until the worker paused where the test asked (``mark`` exists) or exited (it never got there)."""
    wait_for(lambda: mark.exists() or worker.poll() is not None, timeout=timeout)


def kill_when_paused(worker: subprocess.Popen, mark: Path, timeout: float = 90.0) -> str:
    """SIGKILL the worker once it paused where the test asked; returns the point it reports."""
    try:
        wait_paused(worker, mark, timeout)
    finally:
        worker.send_signal(signal.SIGKILL)
        output, _ = worker.communicate(timeout=30)
    assert mark.exists(), f"the worker never reached the pause point:\n{output[-3000:]}"
    return mark.read_text().split()[0]


def recover(app) -> None:
    """What the next worker does at start: the dead worker's job ends ``interrupted`` (then it runs what is queued)."""
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()


def run_job(app, job_id: int) -> Job:
    recover(app)
    return db.session.get(Job, job_id)


def enqueue(project_name: str) -> int:
    job_id = queue.enqueue(projects.get_by_name(project_name), actor="test").id
    db.session.commit()
    return job_id


def request_restore(backup_id: int, target: Path) -> int:
    job_id = service.request_restore(backup_id, target=str(target), actor="test").id
    db.session.commit()
    return job_id


def errors(job_id: int) -> list[str]:
    return list(db.session.scalars(select(JobLog.message).where(JobLog.job_id == job_id, JobLog.tag == "ERROR")
                                   .order_by(JobLog.id)))


def sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()) if root.exists() else []


def assert_clean_ending(app, job_id: int, status: str, error_class: str, dest: Path | None = None) -> Job:
    """The job ended as ``status`` with a readable reason; nothing it left is partial or uncatalogued."""
    job = db.session.get(Job, job_id)
    assert (job.status, job.error_class) == (status, error_class), (job.status, job.error_message, errors(job_id))
    assert job.error_message and "Traceback" not in job.error_message
    assert job.finished_at is not None and job.partial_outputs == []
    assert not os.path.isdir(app.config["CACHE_DIR"]) or os.listdir(app.config["CACHE_DIR"]) == []
    archives = db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
    for archive in archives:  # a catalogued archive is whole: its file hashes to the catalogued SHA-256
        if archive.location_kind == "directory":
            assert (os.path.getsize(archive.path), sha256(archive.path)) == (archive.size, archive.sha256)
    if dest is not None:  # every file in the destination is a catalogued, complete archive
        catalogued = {a.path for a in db.session.scalars(select(Archive).where(Archive.path.is_not(None)))}
        assert {str(p) for p in files_under(dest)} <= catalogued, files_under(dest)
    for row in db.session.scalars(select(TapeFile).where(TapeFile.job_id == job_id, TapeFile.kind == "archive")):
        assert row.void == (row.archive_id is None), "a tape file is valid exactly when its archive is catalogued"
    return job
