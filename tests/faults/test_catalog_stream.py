"""A tar.gz backup's catalog is written while the archive is compressed (catalog_stream.py), a mirror's while its
files are copied (jobs/mirror_catalog.py), and restore offers either only once the job ended well: a real worker paused
mid-compression (mid-copy) already has member rows in the database under a job restore refuses; resumed, the same
rows become its browsable catalog; killed, recovery deletes them."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from stagebackup import project_checks, projects
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.jobs.summary import job_detail
from stagebackup.models import Archive, ArchiveMember, Job, JobStage
from stagebackup.restore import browse, service
from tests.faults.support import assert_clean_ending, enqueue, fault_env, recover, run_job, start_worker, wait_paused
from tests.integration.test_sync import sync_project
from tests.integration.test_worker_processes import wait_for

pytestmark = pytest.mark.slow
FILES = 3000  # three spilled batches of the member spool (1,000 rows each) before the pause
PAUSE_AFTER = 2500  # compress checkpoints (one per member) before the worker pauses


@pytest.fixture(scope="module")
def many_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog") / "src"
    for d in range(3):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(FILES // 3):
            (root / f"d{d}" / f"f{i:04d}.txt").write_text(f"{d}/{i}\n")
    return root


def member_rows(job_id: int) -> int:
    return db.session.scalar(select(func.count(ArchiveMember.id)).where(ArchiveMember.job_id == job_id))


def restorable(job_id: int) -> bool:
    db.session.rollback()
    db.session.expire_all()
    try:
        service.source_backup(job_id)
    except ValidationError:
        return False
    finally:
        db.session.rollback()
    return True


def paused_mid_compress(app, tmp_path, job_id: int, **extra):
    """A worker paused inside the compress stage, once its catalog thread wrote 2,000 rows of the archive."""
    return paused_in(app, tmp_path, job_id, "compress", PAUSE_AFTER, 2000, **extra)


def paused_in(app, tmp_path, job_id: int, stage_code: str, skip: int, rows: int, **extra):
    """A worker paused inside ``stage_code`` (after ``skip`` checkpoints), once ``rows`` catalog rows of the job
    are in the database; the job is not restorable and shows no archive."""
    mark = tmp_path / "paused"
    worker = start_worker(fault_env(app, pause_at=stage_code, skip=skip, mark=mark, **extra), "--burst")
    wait_paused(worker, mark)
    assert worker.poll() is None, worker.communicate()[0][-3000:]
    wait_for(lambda: member_rows(job_id) >= rows)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    stage = db.session.get(JobStage, (job_id, stage_code))
    assert job.status == "running" and stage.started_at is not None and stage.finished_at is None
    assert not restorable(job_id)
    assert job_id not in {row[0].id for row in browse.finished_backups(job.project_id)}
    assert job_detail(job)["archives"] == []  # the job's page lists no archive still being written
    db.session.rollback()
    return worker


def resumed_to_the_end(worker, resume: Path, job_id: int) -> tuple[Job, Archive]:
    """Let the paused worker go on; the job, which must have succeeded, and its one archive."""
    try:
        resume.touch()
        output, _ = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
    assert worker.returncode == 0, output[-3000:]
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job.status == "succeeded", job.error_message
    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
    return job, archive


def test_rows_are_written_while_compressing_and_offered_only_after(app, tmp_path, many_files):
    projects.create(project_checks.ProjectSpec(name="many", sources=[str(many_files)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    job_id = enqueue("many")
    resume = tmp_path / "resume"
    worker = paused_mid_compress(app, tmp_path, job_id, STAGEBACKUP_TEST_RESUME=str(resume))
    job, archive = resumed_to_the_end(worker, resume, job_id)
    assert len(archive.sha256) == 64 and archive.path
    assert member_rows(job_id) == archive.member_count == FILES + 4  # the files, their 3 folders and the root
    assert restorable(job_id)
    assert job_id in {row[0].id for row in browse.finished_backups(job.project_id)}


def test_a_worker_killed_while_compressing_leaves_no_catalog(app, tmp_path, many_files):
    dest = tmp_path / "dest"
    spec = project_checks.ProjectSpec(name="killed", sources=[str(many_files)], dest_dir=str(dest))
    projects.create(spec, actor="test")
    job_id = enqueue("killed")
    worker = paused_mid_compress(app, tmp_path, job_id)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    recover(app)
    assert_clean_ending(app, job_id, "interrupted", "WorkerLost", dest)
    assert member_rows(job_id) == 0 and not restorable(job_id)
    assert job_id not in {row[0].id for row in browse.finished_backups(db.session.get(Job, job_id).project_id)}
    assert not db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
    rerun = run_job(app, enqueue("killed"))
    assert rerun.status == "succeeded", rerun.error_message
    assert member_rows(rerun.id) == FILES + 4 and restorable(rerun.id)


# -- a mirror: its catalog (spooled by the planner) is written while the files are copied --------------------------
# Written by a thread in the worker, or (a large mirror) by a process of its own: every mirror is "large" at 0 bytes.
WRITERS = pytest.mark.parametrize("min_bytes", ["1048576", "0"], ids=["thread", "process"])


@WRITERS
def test_a_mirrors_rows_are_written_while_copying_and_offered_only_after(app, tmp_path, many_files, min_bytes):
    sync_project("mirror", [many_files], tmp_path / "mirror")
    job_id = enqueue("mirror")
    resume = tmp_path / "resume"
    # Paused at the copy's first checkpoint: every row (the files, 3 folders, the source's top) gets written.
    worker = paused_in(app, tmp_path, job_id, "copy", 0, FILES + 4, STAGEBACKUP_TEST_RESUME=str(resume),
                       STAGEBACKUP_SYNC_CATALOG_PROCESS_MIN_BYTES=min_bytes)
    try:
        assert member_rows(job_id) == FILES + 4
        [unfinished] = db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
        assert unfinished.sha256 == "" and unfinished.path is None  # not recorded yet
    except BaseException:
        worker.kill()  # paused for good otherwise
        worker.communicate(timeout=30)
        raise
    finally:
        db.session.rollback()
    job, archive = resumed_to_the_end(worker, resume, job_id)
    assert len(archive.sha256) == 64 and archive.path == str(tmp_path / "mirror")  # the quick check's digest
    assert member_rows(job_id) == archive.member_count == FILES + 4
    assert archive.size == sum(path.stat().st_size for path in many_files.rglob("*") if path.is_file())
    assert restorable(job_id)
    rerun = run_job(app, enqueue("mirror"))  # nothing changed: recorded by reference to this catalog
    assert rerun.status == "succeeded" and rerun.catalog_job_id == job_id


@WRITERS
def test_a_worker_killed_while_mirroring_leaves_no_catalog(app, tmp_path, many_files, min_bytes):
    dest = tmp_path / "mirror"
    sync_project("killed-mirror", [many_files], dest)
    job_id = enqueue("killed-mirror")
    worker = paused_in(app, tmp_path, job_id, "copy", 0, FILES + 4,
                       STAGEBACKUP_SYNC_CATALOG_PROCESS_MIN_BYTES=min_bytes)
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    recover(app)
    assert_clean_ending(app, job_id, "interrupted", "WorkerLost")
    assert member_rows(job_id) == 0 and not restorable(job_id)
    assert not db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()
    rerun = run_job(app, enqueue("killed-mirror"))
    assert rerun.status == "succeeded", rerun.error_message
    assert member_rows(rerun.id) == FILES + 4 and restorable(rerun.id)
