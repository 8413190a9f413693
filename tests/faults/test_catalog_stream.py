"""A tar.gz backup's catalog is written while the archive is compressed (catalog_stream.py), and restore offers it
only once the job ended well: a real worker paused mid-compression already has member rows in the database under
a job restore refuses; resumed, the same rows become its browsable catalog; killed, recovery deletes them."""

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
    mark = tmp_path / "paused"
    worker = start_worker(fault_env(app, pause_at="compress", skip=PAUSE_AFTER, mark=mark, **extra), "--burst")
    wait_paused(worker, mark)
    assert worker.poll() is None, worker.communicate()[0][-3000:]
    wait_for(lambda: member_rows(job_id) >= 2000)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    stage = db.session.get(JobStage, (job_id, "compress"))
    assert job.status == "running" and stage.started_at is not None and stage.finished_at is None
    assert not restorable(job_id)
    assert job_id not in {row[0].id for row in browse.finished_backups(job.project_id)}
    assert job_detail(job)["archives"] == []  # the job's page lists no archive still being written
    db.session.rollback()
    return worker


def test_rows_are_written_while_compressing_and_offered_only_after(app, tmp_path, many_files):
    projects.create(project_checks.ProjectSpec(name="many", sources=[str(many_files)], dest_dir=str(tmp_path / "dest")),
                    actor="test")
    job_id = enqueue("many")
    resume = tmp_path / "resume"
    worker = paused_mid_compress(app, tmp_path, job_id, STAGEBACKUP_TEST_RESUME=str(resume))
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
