"""Cancel or a warm stop while an archive is being written to tape: the partial tape file is void in the
catalog, `flask tape files`, the job page and a catalog rebuilt from the tape; restore never offers it; the
next backup appends after it and restores byte for byte."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, Job
from stagebackup.restore import browse
from stagebackup.tape import admin
from stagebackup.tape.reader import read_archive
from stagebackup.tape.sink import TapeSink
from stagebackup.tape_models import TapeFile
from tests.conftest import make_app
from tests.integration.test_tape_backup import errors_of, run_one, tape_project

MiB = 1 << 20


@pytest.fixture
def stop_mid_write(app, monkeypatch):
    """After the first block of the first archive reaches the tape, stop the job the way the test says
    (the operator's cancel, or the worker's warm stop) and let the write go on until the job notices."""
    how = {"stop": None}
    real_advance = TapeSink._advance
    fired = threading.Event()

    def advance(self, nbytes):
        if not fired.is_set():
            fired.set()
            with app.app_context():
                how["stop"]()
            # The write goes on block by block until the job's thread sees the stop and aborts the copy.
            self.reporter.abort.wait(30)
        return real_advance(self, nbytes)

    monkeypatch.setattr(TapeSink, "_advance", advance)
    return how, fired


def big_tree(root):
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(3 * MiB))  # 12 blocks of 256 KiB: the write is mid-file
    return root


@pytest.mark.parametrize("ending", ["cancelled", "interrupted"])
def test_a_job_stopped_while_writing_to_tape_leaves_only_a_void_file(app, tmp_path, stop_mid_write, ending):
    how, fired = stop_mid_write
    admin.label(app.config, "vtape0", "TAPE001")
    project = tape_project("stopme", [big_tree(tmp_path / "src")])
    job_id = queue.enqueue(project, actor="test").id
    worker = Worker(app, burst=True)
    def cancel():
        queue.request_cancel(job_id, actor="test")

    how["stop"] = cancel if ending == "cancelled" else worker.stop_event.set
    assert worker.run() == 0
    assert fired.is_set()
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == ending, (job.status, job.error_message, errors_of(job_id))

    files = db.session.scalars(select(TapeFile).where(TapeFile.job_id == job_id)).all()
    assert [(f.file_number, f.kind, f.void, f.archive_id) for f in files] == [(1, "archive", True, None)]
    assert db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all() == []
    db.session.rollback()

    listing = app.test_cli_runner().invoke(args=["tape", "files", "TAPE001"])
    assert listing.exit_code == 0, listing.output
    [line] = [line for line in listing.output.splitlines() if line.split()[:1] == ["1"]]
    assert "VOID" in line

    page = app.test_client().get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert "void-file" in page and "作废" in page
    assert browse.finished_backups(project.id) == []  # restore offers no backup of this project
    restore_page = app.test_client().get(f"/restore/backups/{job_id}")
    assert restore_page.status_code == 404

    # The next backup appends after the void file and restores byte for byte; the scan of the tape into
    # an empty catalog knows only that backup.
    worker.stop_event.clear()
    small = tmp_path / "small"
    small.mkdir()
    (small / "keep.txt").write_bytes(b"keep me\n" * 1000)
    good = run_one(app, tape_project("good", [small]))
    assert good.status == "succeeded", (good.error_message, errors_of(good.id))
    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == good.id)).all()
    [piece] = db.session.scalars(select(TapeFile).where(TapeFile.archive_id == archive.id)).all()
    assert piece.file_number == 2 and not piece.void
    digest = hashlib.sha256()
    for block in read_archive(app.config, "vtape0", archive.id):
        digest.update(block)
    assert digest.hexdigest() == archive.sha256
    assert [j.id for j, *_ in browse.finished_backups(good.project_id)] == [good.id]

    # The catalog rebuilt from the tape alone (the database lost): the partial file is void there too.
    rebuilt = make_app(tmp_path / "rebuilt", VTAPE_DIR=app.config["VTAPE_DIR"])
    with rebuilt.app_context():
        result = rebuilt.test_cli_runner().invoke(args=["tape", "scan", "vtape0"])
        assert result.exit_code == 0, result.output
        assert "file(s) 1: no session index names them" in result.output
        rows = db.session.execute(select(TapeFile.file_number, TapeFile.kind, TapeFile.void,
                                         TapeFile.archive_id.is_not(None)).order_by(TapeFile.file_number)).all()
        assert [tuple(r) for r in rows] == [(0, "label", False, False), (1, "archive", True, False),
                                            (2, "archive", False, True), (3, "index", False, False)]
        [scanned] = db.session.scalars(select(Archive)).all()
        assert scanned.sha256 == archive.sha256
        db.session.remove()
