"""End of medium with a real worker process: the job waits for a tape (yellow badge, heartbeating),
continues on the next labelled tape, and restore reads both pieces back; cancel works while waiting."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest
from sqlalchemy import select

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.models import Archive, Job, JobStage
from stagebackup.tape import admin
from stagebackup.tape.reader import read_archive
from stagebackup.tape_models import Drive, Tape, TapeFile
from tests.conftest import flask_cmd, flask_env, make_app, run_flask

MiB = 1024 * 1024
SMALL_TAPE = {"VTAPE_CAPACITY_BYTES": 4 * MiB, "VTAPE_EARLY_WARNING_BYTES": 512 * 1024}


@pytest.fixture
def small_tape_app(tmp_path):
    application = make_app(tmp_path, **SMALL_TAPE)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def env_for(app):
    env = flask_env(app)
    env.update({f"STAGEBACKUP_{k}": str(v) for k, v in SMALL_TAPE.items()})
    return env


def start_worker(app):
    return subprocess.Popen(flask_cmd("worker", "run"), env=env_for(app), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def flask(app, *args):
    return subprocess.run(flask_cmd(*args), env=env_for(app), capture_output=True, text=True, timeout=60, check=True)


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        finally:
            db.session.rollback()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def job_status(job_id):
    job = db.session.get(Job, job_id)
    db.session.refresh(job)
    return job.status


def big_project(tmp_path, name):
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / "noise.bin").write_bytes(os.urandom(6 * MiB))  # incompressible: more than one 4 MiB tape
    spec = project_checks.ProjectSpec(name=name, sources=[str(src)], dest_drive="vtape0")
    return projects.create(spec, actor="test")


def test_archive_spans_two_tapes(small_tape_app, tmp_path):
    app = small_tape_app
    admin.label(app.config, "vtape0", "TAPE001")
    job_id = queue.enqueue(big_project(tmp_path, "span"), actor="test").id
    db.session.commit()
    worker = start_worker(app)
    try:
        wait_for(lambda: job_status(job_id) == "waiting_media")
        job = db.session.get(Job, job_id)
        steps = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
        assert steps["copy"] == "waiting" and steps["scan"] == "done"
        stage = db.session.get(JobStage, (job_id, "copy"))
        assert stage.message.startswith("load a new tape in vtape0 (pool default)")
        assert db.session.scalar(select(Tape.state).where(Tape.label == "TAPE001")) == "full"
        drive = db.session.get(Drive, "vtape0")
        assert drive.message.startswith("load a new tape in vtape0") and drive.busy_job_id is None
        beat = db.session.get(Job, job_id).heartbeat_at
        db.session.rollback()
        time.sleep(1.5)
        assert db.session.get(Job, job_id).heartbeat_at > beat  # still alive: never recovered as stale
        db.session.rollback()

        out = flask(app, "tape", "load", "vtape0", "TAPE002")
        assert "blank cartridge TAPE002 loaded" in out.stdout
        wait_for(lambda: "no label" in (db.session.get(JobStage, (job_id, "copy")).message or ""))
        flask(app, "tape", "label", "vtape0", "TAPE002")
        wait_for(lambda: job_status(job_id) in ("succeeded", "failed"), timeout=90)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    job = db.session.get(Job, job_id)
    assert job.status == "succeeded", job.error_message
    archive = db.session.scalar(select(Archive).where(Archive.job_id == job_id))
    pieces = db.session.execute(
        select(Tape.label, TapeFile.file_number, TapeFile.piece, TapeFile.bytes, TapeFile.void)
        .join(Tape, Tape.id == TapeFile.tape_id).where(TapeFile.archive_id == archive.id).order_by(TapeFile.piece)
    ).all()
    assert [(p.label, p.file_number, p.piece, p.void) for p in pieces] == [
        ("TAPE001", 1, 1, False), ("TAPE002", 1, 2, False)]
    assert sum(p.bytes for p in pieces) == archive.size and pieces[0].bytes < archive.size
    index = db.session.scalar(select(TapeFile).join(Tape).where(Tape.label == "TAPE002", TapeFile.kind == "index"))
    assert index.file_number == 2

    # Restore reads the pieces back in order, asking for the other tape when it is not in the drive.
    asked = []

    def swap(label, reason):
        asked.append(label)
        admin.load(app.config, "vtape0", label)

    digest = hashlib.sha256()
    admin.load(app.config, "vtape0", "TAPE002")
    for block in read_archive(app.config, "vtape0", archive.id, on_wrong_tape=swap):
        digest.update(block)
    assert digest.hexdigest() == archive.sha256 and asked == ["TAPE001", "TAPE002"]


def test_cancel_while_waiting_for_media(small_tape_app, tmp_path):
    app = small_tape_app
    admin.label(app.config, "vtape0", "TAPE001")
    job_id = queue.enqueue(big_project(tmp_path, "cancelme"), actor="test").id
    db.session.commit()
    worker = start_worker(app)
    try:
        wait_for(lambda: job_status(job_id) == "waiting_media")
        run_flask(app, "jobs", "cancel", str(job_id))
        wait_for(lambda: job_status(job_id) == "cancelled", timeout=30)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    void = db.session.scalars(select(TapeFile).where(TapeFile.job_id == job_id)).all()
    assert [(f.file_number, f.void) for f in void] == [(1, True)]  # the piece of a job that never finished
    db.session.rollback()
    files = run_flask(app, "tape", "files", "TAPE001", check=False)
    assert files.returncode == 0, files.stderr
    assert "VOID" in files.stdout
