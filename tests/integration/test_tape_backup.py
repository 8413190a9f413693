"""Backups to the virtual tape drive, run by a real worker, checked with GNU tar and dd."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.summary import job_detail
from stagebackup.jobs.worker import Worker
from stagebackup.models import Archive, Job, JobLog
from stagebackup.tape import admin
from stagebackup.tape.reader import read_archive
from stagebackup.tape_models import Tape, TapeFile
from tests.conftest import build_hostile_tree, make_app
from tests.treecompare import assert_same_tree


def tape_project(name, sources, **kw):
    spec = project_checks.ProjectSpec(name=name, sources=[str(s) for s in sources], dest_drive="vtape0", **kw)
    return projects.create(spec, actor="test")


def run_one(app, project) -> Job:
    job = queue.enqueue(project, actor="test")
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    return db.session.get(Job, job.id)


def errors_of(job_id):
    return [r.message for r in db.session.scalars(select(JobLog).where(JobLog.job_id == job_id, JobLog.tag == "ERROR"))]


def cartridge_dir(app, drive="vtape0") -> Path:
    state = json.loads((Path(app.config["VTAPE_DIR"]) / "drives" / f"{drive}.json").read_text())
    return Path(app.config["VTAPE_DIR"]) / "cartridges" / state["cartridge"]


@pytest.fixture
def labelled(app):
    admin.label(app.config, "vtape0", "TAPE001")
    return app


def test_backup_to_tape_catalogs_verifies_and_indexes(labelled, tmp_path):
    app = labelled
    tree = build_hostile_tree(tmp_path / "src")
    job = run_one(app, tape_project("磁带 tape", [tree]))
    assert job.status == "succeeded", (job.error_message, errors_of(job.id))
    steps = job_detail(job)["stage_steps"]
    assert [(s["label"], s["state"]) for s in steps] == [
        ("扫描文件", "done"), ("压缩/打包", "done"), ("写入磁带", "done"), ("完成", "done")]
    assert job.plan["tapes_needed"] == 1 and job.plan["bytes"] > 0 and "tape plan" in job.plan["summary"]

    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == job.id)).all()
    assert archive.location_kind == "tape" and archive.path is None and archive.name.endswith(".tar.gz")
    files = db.session.scalars(select(TapeFile).order_by(TapeFile.file_number)).all()
    assert [(f.file_number, f.kind, f.void) for f in files] == [(0, "label", False), (1, "archive", False),
                                                                 (2, "index", False)]
    data = files[1]
    assert data.archive_id == archive.id and data.job_id == job.id and data.verified_at is not None
    assert data.sha256 == archive.sha256 and data.bytes == archive.size and data.block_size == 256 * 1024
    assert data.blocks == -(-archive.size // (256 * 1024))
    tape = db.session.scalar(select(Tape))
    assert tape.bytes_used >= archive.size
    messages = [r.message for r in db.session.scalars(select(JobLog).where(JobLog.job_id == job.id))]
    assert "archive 1 written to tape TAPE001 file 1" in messages  # words for the operator, not a dict

    # The cartridge's data file for tape file 1 is the archive itself: GNU tar restores it.
    out = tmp_path / "restored"
    out.mkdir()
    subprocess.run(["tar", "-xzf", cartridge_dir(app) / "000001.data", "-C", out], check=True, capture_output=True)
    assert_same_tree(tree, out / str(tree).lstrip("/"))

    # The reading API gives the same bytes.
    digest = hashlib.sha256()
    for block in read_archive(app.config, "vtape0", archive.id):
        digest.update(block)
    assert digest.hexdigest() == archive.sha256

    # A second session appends after the first: file 3 and its index at 4.
    job2 = run_one(app, projects.get_by_name("磁带 tape"))
    assert job2.status == "succeeded", job2.error_message
    rows = db.session.scalars(select(TapeFile).where(TapeFile.job_id == job2.id).order_by(TapeFile.file_number))
    assert [(f.file_number, f.kind) for f in rows] == [(3, "archive"), (4, "index")]


def test_disaster_recovery_with_dd_and_tar_only(labelled, tmp_path):
    """The disaster-recovery steps of docs/restore-and-recovery.md, with nothing but dd, tar and a JSON reader."""
    app = labelled
    tree = build_hostile_tree(tmp_path / "src")
    job = run_one(app, tape_project("dr", [tree]))
    assert job.status == "succeeded", job.error_message
    cart = cartridge_dir(app)

    def dd(file_number: int) -> bytes:
        path = cart / f"{file_number:06d}.data"
        return subprocess.run(["dd", f"if={path}", "bs=256K", "status=none"],
                              check=True, capture_output=True).stdout

    label = json.loads(dd(0))
    assert label["label"] == "TAPE001" and label["format"] == "stagebackup-tape-label/1"
    numbers = sorted(int(p.name[:6]) for p in cart.glob("*.data"))
    index = json.loads(dd(numbers[-1]))  # the last file of the last session is its index
    assert index["format"] == "stagebackup-tape-index/1" and index["project"] == "dr"
    [entry] = index["archives"]
    [piece] = entry["pieces"]
    out = tmp_path / "dr-restore"
    out.mkdir()
    data_file = cart / "{:06d}.data".format(piece["file_number"])
    pipe = subprocess.run(
        f"dd if='{data_file}' bs=256K status=none | tee archive.bin | tar -xzf - -C '{out}'",
        shell=True, cwd=tmp_path, capture_output=True)
    assert pipe.returncode == 0, pipe.stderr
    assert hashlib.sha256((tmp_path / "archive.bin").read_bytes()).hexdigest() == entry["sha256"] == piece["sha256"]
    assert_same_tree(tree, out / str(tree).lstrip("/"))


def test_unlabelled_tape_fails_the_job_with_the_reason(app, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    job = run_one(app, tape_project("blank", [tmp_path / "src"]))
    assert job.status == "failed"
    assert job.error_message == "the tape in drive vtape0 has no label: run `flask tape label vtape0 LABEL`"
    steps = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert steps["copy"] == "failed" and steps["finalize"] == "pending"
    assert db.session.scalar(select(Archive).where(Archive.job_id == job.id)) is None


def test_write_protected_tape_fails_the_job(labelled, tmp_path):
    app = labelled
    admin.load(app.config, "vtape0", "TAPE001", write_protected=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    job = run_one(app, tape_project("wp", [tmp_path / "src"]))
    assert job.status == "failed" and "write-protected" in job.error_message


def test_scan_rebuilds_the_catalog_in_an_empty_database(labelled, tmp_path):
    app = labelled
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "file.txt").write_text("hello")
    job = run_one(app, tape_project("scanme", [tree]))
    assert job.status == "succeeded", job.error_message
    original = db.session.scalar(select(Archive).where(Archive.job_id == job.id))
    sha, name = original.sha256, original.name
    vtape_dir = app.config["VTAPE_DIR"]
    db.session.remove()

    other = make_app(tmp_path / "second-server", VTAPE_DIR=vtape_dir)
    with other.app_context():
        result = other.test_cli_runner().invoke(args=["tape", "scan", "vtape0"])
        assert result.exit_code == 0, result.output
        assert "1 archive(s) catalogued" in result.output
        [archive] = db.session.scalars(select(Archive)).all()
        assert (archive.sha256, archive.name, archive.location_kind) == (sha, name, "tape")
        files = other.test_cli_runner().invoke(args=["tape", "files", "TAPE001", "--json"])
        rows = json.loads(files.output)
        assert [(r["file_number"], r["kind"]) for r in rows] == [(0, "label"), (1, "archive"), (2, "index")]
        assert rows[1]["sha256"] == sha and rows[1]["archive"] == name
        again = other.test_cli_runner().invoke(args=["tape", "scan", "vtape0"])
        assert "0 added" in again.output and "0 archive(s)" in again.output
        db.session.remove()
        db.engine.dispose()


def test_verify_mismatch_fails_the_job_and_leaves_the_file_void(labelled, tmp_path, monkeypatch):
    from stagebackup.tape import cartridge

    original = cartridge.Medium.append_block

    def flaky_drive(self, index, data):  # the drive acknowledges a block but records it wrongly
        if index == 1 and self.files[1:] == []:
            data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
        return original(self, index, data)

    monkeypatch.setattr(cartridge.Medium, "append_block", flaky_drive)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a" * 10000)
    job = run_one(labelled, tape_project("flaky", [tmp_path / "src"]))
    assert job.status == "failed" and job.error_class == "TapeVerifyFailed"
    assert job.error_message.startswith("verify failed: tape TAPE001 file 1 reads back with SHA-256")
    assert {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}["copy"] == "failed"
    [row] = db.session.scalars(select(TapeFile).where(TapeFile.job_id == job.id)).all()
    assert row.void and row.archive_id is None
    assert db.session.scalar(select(Archive).where(Archive.job_id == job.id)) is None


def test_without_verify_the_move_hashes_what_it_writes(labelled, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a" * 10000)
    job = run_one(labelled, tape_project("noverify", [tmp_path / "src"], verify_after_write=False))
    assert job.status == "succeeded", job.error_message
    archive = db.session.scalar(select(Archive).where(Archive.job_id == job.id))
    row = db.session.scalar(select(TapeFile).where(TapeFile.archive_id == archive.id))
    assert row.sha256 == archive.sha256 and row.verified_at is None and not row.void


@pytest.mark.parametrize("direct", [False, True], ids=["staged", "compress-directly-to-tape"])
def test_archive_groups_each_become_a_tape_file_and_the_index_lists_their_members(tmp_path, direct):
    # Progress flushed on every checkpoint and a short lock wait: if any thread held SQLite's write lock
    # across a tape write while the compressor needs it, this fails at once instead of now and then.
    app = make_app(tmp_path, ARCHIVE_GROUP_MAX_BYTES=1024 * 1024, COMPRESS_DIRECTLY_TO_TAPE=direct,
                   PROGRESS_FLUSH_INTERVAL_S=0.0, SQLITE_BUSY_TIMEOUT_MS=3000)
    with app.app_context():
        admin.label(app.config, "vtape0", "TAPE001")
        src = tmp_path / "src"
        src.mkdir()
        for i in range(3):
            (src / f"part{i}.bin").write_bytes(os.urandom(900 * 1024))
        job = run_one(app, tape_project("groups", [src]))
        assert job.status == "succeeded", (job.error_message, errors_of(job.id))
        archives = db.session.scalars(select(Archive).where(Archive.job_id == job.id).order_by(Archive.seq)).all()
        assert len(archives) == 3
        rows = db.session.scalars(select(TapeFile).where(TapeFile.job_id == job.id).order_by(TapeFile.file_number))
        assert [(f.file_number, f.kind, f.archive_id) for f in rows] == [
            (1, "archive", archives[0].id), (2, "archive", archives[1].id), (3, "archive", archives[2].id),
            (4, "index", None)]
        cart = cartridge_dir(app)
        for n, archive in enumerate(archives, start=1):
            data = (cart / f"{n:06d}.data").read_bytes()
            assert hashlib.sha256(data).hexdigest() == archive.sha256
        index = json.loads((cart / "000004.data").read_bytes())
        members = sorted(m[0].rsplit("/", 1)[-1] for a in index["archives"] for m in a["members"] if m[1] == "file")
        assert members == ["part0.bin", "part1.bin", "part2.bin"]
        db.session.remove()
        db.engine.dispose()


def test_restore_job_reads_the_archive_back_from_tape(labelled, tmp_path):
    """The restore helper's job, fed by tape.reader: a hostile tree comes back byte for byte."""
    app = labelled
    tree = build_hostile_tree(tmp_path / "src")
    job = run_one(app, tape_project("restore-me", [tree]))
    assert job.status == "succeeded", job.error_message
    target = Path(app.config["RESTORE_ROOTS"][0]) / "back"
    result = app.test_cli_runner().invoke(args=["restore", "run", str(job.id), "--to", str(target), "--json"])
    assert result.exit_code == 0, result.output
    restore_id = json.loads(result.output)["id"]
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    restore = db.session.get(Job, restore_id)
    assert restore.status == "succeeded", (restore.error_message, errors_of(restore_id))
    assert_same_tree(tree, target / str(tree).lstrip("/"))
