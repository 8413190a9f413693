"""An archive spanning three small virtual cartridges, with a real worker process, for tar.gz, encrypted
tar.gz and 7z: with one drive the restore waits for each tape in turn (waiting_media, the label on the job
card and the drive card) and goes on when the operator loads it; with the three tapes in three drives a
verify needs nobody. ``flask restore run --wait`` says which tape to load, and Ctrl-C cancels the waiting job."""

from __future__ import annotations

import os
import re
import select as io_select
import signal
import subprocess
import time

import pytest
from sqlalchemy import select

from stagebackup import pathpolicy, project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.models import Archive, Job, JobLog, JobStage
from stagebackup.restore import service
from stagebackup.tape import admin
from stagebackup.tape_models import Tape, TapeFile
from tests.conftest import flask_cmd, flask_env, make_app
from tests.integration.test_tape_end_of_medium import wait_for
from tests.treecompare import snapshot

MiB = 1024 * 1024
DRIVES = {"vtape0": "virtual", "vtape1": "virtual", "vtape2": "virtual"}
SMALL = {"VTAPE_CAPACITY_BYTES": 4 * MiB, "VTAPE_EARLY_WARNING_BYTES": 512 * 1024}
LABELS = ["SPAN1", "SPAN2", "SPAN3"]
FORMATS = {"tgz": {}, "tgz-encrypted": {"password": "span secret"}, "7z": {"archive_format": "7z"}}


@pytest.fixture
def app(tmp_path):
    application = make_app(tmp_path, DRIVES=DRIVES, **SMALL)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def env_of(app) -> dict:
    env = flask_env(app)
    env.update({f"STAGEBACKUP_{k}": str(v) for k, v in SMALL.items()})
    env["STAGEBACKUP_DRIVES"] = ",".join(f"{name}={device}" for name, device in DRIVES.items())
    return env


def start_worker(app):
    return subprocess.Popen(flask_cmd("worker", "run"), env=env_of(app), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def job(job_id) -> Job:
    db.session.rollback()  # see what the worker committed since
    row = db.session.get(Job, job_id)
    db.session.refresh(row)
    return row


def finished(job_id) -> bool:
    return job(job_id).status in ("succeeded", "warning", "failed", "cancelled", "interrupted")


def log_of(job_id) -> str:
    return "\n".join(db.session.scalars(select(JobLog.message).where(JobLog.job_id == job_id).order_by(JobLog.id)))


def operator_loads(app, drive: str, name: str) -> None:
    db.session.rollback()  # no read transaction of ours may stand in the way of the worker's writes
    admin.load(app.config, drive, name)


def three_labelled_tapes(app) -> None:
    for name in LABELS:
        admin.load(app.config, "vtape0", name)
        admin.label(app.config, "vtape0", name)
    admin.load(app.config, "vtape0", LABELS[0])


def spanning_backup(app, tmp_path, fmt: str) -> tuple[int, str]:
    """A backup job whose one archive lies on SPAN1, SPAN2 and SPAN3 (the test loads them as it asks)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "noise.bin").write_bytes(os.urandom(9 * MiB))  # incompressible: three 4 MiB tapes
    (src / "sub" / "note.txt").write_text("small file after the big one\n")
    project = projects.create(project_checks.ProjectSpec(name=f"span-{fmt}", sources=[str(src)], dest_drive="vtape0",
                                                   **FORMATS[fmt]), actor="test")
    backup_id = queue.enqueue(project, actor="test").id
    db.session.commit()
    for name in LABELS[1:]:  # the backup asks for a new tape twice
        wait_for(lambda: job(backup_id).status == "waiting_media" or finished(backup_id), timeout=120)
        assert job(backup_id).status == "waiting_media", job(backup_id).error_message
        operator_loads(app, "vtape0", name)
        wait_for(lambda name=name: f"tape {name} loaded: continuing" in log_of(backup_id))
    wait_for(lambda: finished(backup_id), timeout=120)
    assert job(backup_id).status == "succeeded", job(backup_id).error_message
    archive = db.session.scalar(select(Archive).where(Archive.job_id == backup_id))
    labels = db.session.scalars(select(Tape.label).join(TapeFile, TapeFile.tape_id == Tape.id)
                                .where(TapeFile.archive_id == archive.id).order_by(TapeFile.piece)).all()
    assert labels == LABELS
    return backup_id, str(src)


def tapes_on_page(html: str) -> list[str]:
    """The labels the page lists as needed, in the order shown."""
    listed = html.split("tapes-needed", 1)[1].split("按读取顺序", 1)[0]
    return re.findall(r"<code[^>]*>([^<]+)</code>", listed)


def restore_asking_for_each_tape(app, backup_id: int, target: str) -> None:
    """One drive: the restore waits for SPAN1, SPAN2, SPAN3 in turn; the operator loads each."""
    browse_page = app.test_client().get(f"/restore/backups/{backup_id}").get_data(as_text=True)
    assert tapes_on_page(browse_page) == LABELS  # before the restore starts: what it will ask for, in order
    db.session.rollback()  # a read transaction of ours must not meet the worker's write (SQLite: busy)
    restore_id = service.request_restore(backup_id, target=target, actor="test").id
    db.session.commit()
    for name in LABELS:
        wait_for(lambda name=name: job(restore_id).waiting_label == name or finished(restore_id), timeout=60)
        waiting = job(restore_id)
        assert (waiting.status, waiting.waiting_label) == ("waiting_media", name), waiting.error_message
        assert db.session.get(JobStage, (restore_id, "read")).message.startswith(f"load tape {name} in vtape0")
        card = app.test_client().get(f"/backup/jobs/{restore_id}/card").get_data(as_text=True)
        assert f'data-label="{name}"' in card and name in card
        page = app.test_client().get(f"/backup/jobs/{restore_id}").get_data(as_text=True)
        assert tapes_on_page(page) == LABELS
        assert job_detail(waiting)["tapes_needed"] == LABELS  # flask jobs show --json
        operator_loads(app, "vtape0", name)
    wait_for(lambda: finished(restore_id), timeout=60)
    assert job(restore_id).status == "succeeded", job(restore_id).error_message
    log = log_of(restore_id)
    assert "tapes needed, in the order they are read: SPAN1, SPAN2, SPAN3" in log
    assert "piece 3 (tape SPAN3 file 1, vtape0) read, SHA-256 verified" in log


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_spanned_archive_restores_with_one_drive_and_verifies_with_three(app, tmp_path, fmt):
    three_labelled_tapes(app)
    worker = start_worker(app)
    try:
        backup_id, src = spanning_backup(app, tmp_path, fmt)
        target = os.path.join(pathpolicy.current().restore_roots[0], "spanned")
        restore_asking_for_each_tape(app, backup_id, target)
        assert snapshot(target + src) == snapshot(src)  # members keep their absolute paths

        # Three drives, a tape in each (not in the order they are read): nobody is asked for anything.
        for drive, name in (("vtape1", "SPAN1"), ("vtape2", "SPAN2"), ("vtape0", "SPAN3")):
            operator_loads(app, drive, name)
        db.session.rollback()
        verify_id = service.request_verify(backup_id, actor="test").id
        db.session.commit()
        wait_for(lambda: finished(verify_id), timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert job(verify_id).status == "succeeded", job(verify_id).error_message
    log = log_of(verify_id)
    assert "load tape" not in log
    assert [f"piece {n} (tape SPAN{n} file 1, {drive})" in log for n, drive in
            ((1, "vtape1"), (2, "vtape2"), (3, "vtape0"))] == [True, True, True]


def stderr_line_with(process, text: str, timeout: float = 60.0) -> str:
    """The first line on the process's stderr that contains ``text`` (it prints as the job changes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _w, _x = io_select.select([process.stderr], [], [], deadline - time.monotonic())
        line = process.stderr.readline() if ready else ""
        if text in line:
            return line
        assert line or not ready, "stderr closed"
    raise AssertionError(f"no line with {text!r} on stderr")


@pytest.mark.slow
def test_cli_restore_waits_for_a_tape_and_ctrl_c_cancels_it(app, tmp_path):
    three_labelled_tapes(app)
    worker = start_worker(app)
    try:
        backup_id, _src = spanning_backup(app, tmp_path, "tgz")
        operator_loads(app, "vtape0", "SPAN2")  # the wrong tape: the restore asks for SPAN1
        target = os.path.join(pathpolicy.current().restore_roots[0], "cancelled")
        cli = subprocess.Popen(flask_cmd("restore", "run", str(backup_id), "--to", target, "--wait"), env=env_of(app),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        restore_id = int(cli.stdout.readline())
        assert "SPAN1, SPAN2, SPAN3" in stderr_line_with(cli, "tapes needed, in the order they are read")
        prompt = stderr_line_with(cli, "is waiting for tape SPAN1")
        assert "load it in vtape0" in prompt and "without a time limit" in prompt
        drives = app.test_client().get("/backup").get_data(as_text=True)
        assert "SPAN1" in drives.split('id="drive-panel"')[1]  # the drive card asks for it too
        cli.send_signal(signal.SIGINT)
        _out, err = cli.communicate(timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert cli.returncode == 1 and "job ended: cancelled" in err
    assert job(restore_id).status == "cancelled" and job(restore_id).waiting_label is None
    assert not os.path.exists(target)
