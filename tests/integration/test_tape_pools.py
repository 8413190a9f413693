"""Tape pools: retention expires tapes (a frozen clock), only blank or expired tapes are labelled over or
erased, recycling keeps the catalog as history, and the allocation policy picks the tape a job writes to."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from stagebackup import project_checks, projects, retention
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, AuditEvent, Job
from stagebackup.tape import admin, media, pools, recycle
from stagebackup.tape.errors import EraseNotConfirmed, TapeHasData
from stagebackup.tape_models import Drive, Tape, TapeFile
from tests.conftest import flask_cmd, flask_env


def backup(app, tmp_path, name, *, pool, **kw) -> Job:
    src = tmp_path / f"src-{name}"
    src.mkdir(exist_ok=True)
    (src / "a.txt").write_text(f"data of {name}\n" * 100)
    try:
        project = projects.get_by_name(name)
    except Exception:  # noqa: BLE001 - first run of this project
        db.session.rollback()
        project = projects.create(project_checks.ProjectSpec(name=name, sources=[str(src)], dest_drive="vtape0",
                                                       dest_pool=pool, **kw), actor="test")
    job = queue.enqueue(project, actor="test")
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.status == "succeeded", job.error_message
    return job


def tape(label: str) -> Tape:
    return db.session.scalar(select(Tape).where(Tape.label == label))


def written_at(label: str):
    return max(f.written_at for f in db.session.scalars(select(TapeFile).join(Tape).where(Tape.label == label)))


def cli(runner, *args):
    return runner.invoke(args=["tape", *args], catch_exceptions=False)


def test_pool_retention_expires_a_tape_and_only_then_it_is_labelled_over(app, runner, tmp_path):
    assert cli(runner, "pools", "create", "weekly", "--retention-days", "7").exit_code == 0
    admin.label(app.config, "vtape0", "TAPE001", pool="weekly")
    job = backup(app, tmp_path, "p1", pool="weekly")
    last = written_at("TAPE001")

    # Within the retention period nothing expires, and the tape is not labelled over, even with --force.
    assert recycle.recycle(actor="test", now=last + timedelta(days=6, hours=23)) == []
    with pytest.raises(TapeHasData):
        admin.label(app.config, "vtape0", "TAPE002", pool="weekly", force=True)
    db.session.rollback()
    forced = cli(runner, "label", "vtape0", "TAPE002", "--force")
    assert forced.exit_code == 4 and "holds data that has not expired" in forced.output
    assert tape("TAPE001").state == media.LABELLED

    later = last + timedelta(days=7, seconds=1)
    assert [t.label for t in recycle.recycle(actor="test", dry_run=True, now=later)] == ["TAPE001"]
    assert tape("TAPE001").state == media.LABELLED  # a dry run changes nothing
    assert [t.label for t in recycle.recycle(actor="test", now=later)] == ["TAPE001"]
    db.session.expire_all()
    row = tape("TAPE001")
    assert row.state == media.EXPIRED
    files = db.session.scalars(select(TapeFile).where(TapeFile.tape_id == row.id)).all()
    assert all(f.expired_at == later for f in files if f.kind != "label")  # kept, marked as history
    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == job.id)).all()
    assert archive.expired_at == later  # restore no longer offers it: its tape is about to be reused
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "tape.recycle")).target == "TAPE001"
    assert [t.label for t, marked in recycle.reusable(later) if marked] == ["TAPE001"]

    # Expired: labelled over once the operator insists; the old catalog stays, retired.
    again = cli(runner, "label", "vtape0", "TAPE001", "--pool", "weekly")
    assert again.exit_code == 4 and "already labelled TAPE001" in again.output
    assert cli(runner, "label", "vtape0", "TAPE001", "--pool", "weekly", "--force").exit_code == 0
    db.session.expire_all()
    states = sorted((t.label.split("~")[0], t.state) for t in db.session.scalars(select(Tape)))
    assert states == [("TAPE001", "labelled"), ("TAPE001", "retired")]
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "tape.label")).details["over"] == "TAPE001"
    assert db.session.scalar(select(TapeFile).where(TapeFile.archive_id == archive.id)).expired_at == later


def test_a_tape_expires_when_retention_pruned_every_archive_on_it(app, runner, tmp_path):
    admin.label(app.config, "vtape0", "TAPE001")  # the default pool: files never expire by age
    first = backup(app, tmp_path, "kept", pool=None, keep_last=1)
    assert recycle.recycle(actor="test") == []
    second = backup(app, tmp_path, "kept", pool=None)  # the prune after it expires the first backup
    assert retention.count_expired(first.id) == 1 and retention.count_expired(second.id) == 0
    pruned = db.session.scalars(select(TapeFile).where(TapeFile.job_id == first.id, TapeFile.kind == "archive")).all()
    assert pruned and all(f.expired_at is not None for f in pruned)  # the prune marked its tape files too
    assert recycle.expirable() == []  # the second backup is on the same tape: it stays
    for archive in db.session.scalars(select(Archive).where(Archive.job_id == second.id)):
        archive.expired_at = archive.created_at  # as a later prune would
    db.session.commit()
    result = cli(runner, "recycle", "--json")
    assert json.loads(result.output) == {"dry_run": False, "newly_expired": ["TAPE001"],
                                         "reusable": [{"label": "TAPE001", "pool": "default"}]}


def test_a_tape_a_job_is_writing_to_never_expires(app, tmp_path):
    pools.create("short", retention_days=1)
    admin.label(app.config, "vtape0", "TAPE001", pool="short")
    backup(app, tmp_path, "w1", pool="short")
    later = written_at("TAPE001") + timedelta(days=2)
    assert [t.label for t in recycle.expirable(later)] == ["TAPE001"]
    writing = queue.enqueue(projects.get_by_name("w1"), actor="test")
    db.session.add(TapeFile(tape_id=tape("TAPE001").id, file_number=99, kind="archive", job_id=writing.id,
                            void=True, written_at=later))  # what a job's open tape file looks like
    db.session.commit()
    assert recycle.expirable(later) == [] and recycle.recycle(actor="test", now=later) == []


def test_erase_needs_an_expired_tape_and_its_label(app, runner, tmp_path):
    pools.create("short", retention_days=1)
    admin.label(app.config, "vtape0", "TAPE001", pool="short")
    backup(app, tmp_path, "e1", pool="short")
    refused = cli(runner, "erase", "vtape0", "--confirm", "TAPE001")
    assert refused.exit_code == 4 and "holds data that has not expired" in refused.output

    recycle.recycle(actor="test", now=written_at("TAPE001") + timedelta(days=2))
    with pytest.raises(EraseNotConfirmed):
        admin.erase(app.config, "vtape0", confirm="TAPE002")
    db.session.rollback()
    erased = cli(runner, "erase", "vtape0", "--confirm", "TAPE001")
    assert erased.exit_code == 0, erased.output
    status = json.loads(cli(runner, "status", "vtape0", "--json").output)
    assert status["label"] is None and "has no label" in status["message"]
    state = json.loads((Path(app.config["VTAPE_DIR"]) / "drives" / "vtape0.json").read_text())
    cartridge = Path(app.config["VTAPE_DIR"]) / "cartridges" / state["cartridge"]
    assert not list(cartridge.glob("*.data"))  # truncated to nothing
    db.session.expire_all()
    [row] = db.session.scalars(select(Tape)).all()
    assert row.state == media.RETIRED and row.label.startswith("TAPE001~")  # history, and the label is free
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "tape.erase")).target == "TAPE001"
    assert cli(runner, "label", "vtape0", "TAPE001", "--pool", "short").exit_code == 0


def test_pools_cli(runner):
    assert cli(runner, "pools", "create", "offsite", "--retention-days", "30", "--allocation", "day").exit_code == 0
    assert cli(runner, "pools", "create", "offsite").exit_code == 4
    assert cli(runner, "pools", "create", "bad", "--allocation", "week").exit_code == 2
    assert cli(runner, "pools", "set", "offsite", "--allocation", "job").exit_code == 0
    assert cli(runner, "pools", "set", "offsite").exit_code == 2
    assert cli(runner, "pools", "set", "legacy", "--retention-days", "0").exit_code == 0
    listed = json.loads(cli(runner, "pools", "list", "--json").output)
    assert listed == [
        {"name": "legacy", "retention_days": None, "allocation": "append", "defined": True},
        {"name": "offsite", "retention_days": 30, "allocation": "job", "defined": True}]
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["tape.pool_create", "tape.pool_set", "tape.pool_set"]


def test_per_day_allocation_refuses_a_tape_of_an_earlier_day(app, tmp_path):
    policy = pools.PoolPolicy("daily", allocation=pools.PER_DAY)
    admin.label(app.config, "vtape0", "TAPE001", pool="daily")
    job = backup(app, tmp_path, "d1", pool="daily")
    row = tape("TAPE001")
    at = written_at("TAPE001")
    assert pools.refusal(row.id, policy, job.id + 1, at) is None  # the same day: appended
    assert "new tape each day" in pools.refusal(row.id, policy, job.id + 1, at + timedelta(days=1))
    per_job = pools.PoolPolicy("daily", allocation=pools.PER_JOB)
    assert pools.refusal(row.id, per_job, job.id, at) is None  # its own tape (a job spanning tapes)
    assert f"holds job #{job.id}" in pools.refusal(row.id, per_job, job.id + 1, at)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        finally:
            db.session.rollback()
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@contextlib.contextmanager
def _worker_process(app):
    """A real `flask worker run` for the body of the block (the job waits for media in it)."""
    worker = subprocess.Popen(flask_cmd("worker", "run"), env=flask_env(app), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_per_job_pool_waits_for_a_new_tape_naming_the_pool(app, tmp_path):
    pools.create("perjob", allocation=pools.PER_JOB)
    admin.label(app.config, "vtape0", "TAPE001", pool="perjob")
    backup(app, tmp_path, "j1", pool="perjob")
    second = queue.enqueue(projects.get_by_name("j1"), actor="test")
    db.session.commit()
    with _worker_process(app):
        _wait_for(lambda: db.session.get(Job, second.id).status == "waiting_media")
        message = db.session.get(Drive, "vtape0").message
        assert "pool perjob" in message and "new tape for each job" in message
        admin.eject(app.config, "vtape0")
        admin.load(app.config, "vtape0", "fresh")
        admin.label(app.config, "vtape0", "TAPE002", pool="perjob")
        _wait_for(lambda: db.session.get(Job, second.id).status == "succeeded")
    assert db.session.get(Job, second.id).plan["pool_tapes"] == 0  # the plan knew TAPE001 was not for it
    jobs_on = {f.job_id for f in db.session.scalars(select(TapeFile).join(Tape).where(Tape.label == "TAPE002"))}
    assert jobs_on == {None, second.id}  # the label, and this job's files only
    assert os.path.isdir(Path(app.config["VTAPE_DIR"]) / "cartridges" / "fresh")


def test_a_backup_that_finds_the_drive_empty_waits_for_a_tape_naming_the_pool(app, tmp_path):
    """The nightly job with nobody at the drive: it waits (as for a full tape), it does not fail."""
    admin.label(app.config, "vtape0", "TAPE001")
    admin.eject(app.config, "vtape0")
    src = tmp_path / "night"
    src.mkdir()
    (src / "a.txt").write_text("a")
    project = projects.create(project_checks.ProjectSpec(name="night", sources=[str(src)], dest_drive="vtape0"),
                              actor="test")
    job = queue.enqueue(project, actor="test")
    db.session.commit()
    with _worker_process(app):
        _wait_for(lambda: db.session.get(Job, job.id).status == "waiting_media")
        message = db.session.get(Drive, "vtape0").message
        assert "load a new tape in vtape0 (pool default)" in message and "no tape in drive vtape0" in message
        admin.load(app.config, "vtape0", "TAPE001")
        _wait_for(lambda: db.session.get(Job, job.id).status == "succeeded")
    assert {f.job_id for f in db.session.scalars(select(TapeFile).join(Tape).where(Tape.label == "TAPE001"))} \
        >= {job.id}
