"""The read limit (读取限速) in real jobs: a limited tar.gz, 7z or sync job reads its sources no faster than the
limit and its result is exact; a cancel lands within about a second even at a limit of a few bytes a second."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Archive, Job, JobLog, Project
from stagebackup.pipeline.throttle import BURST_S
from tests.integration.test_backup_job import create_project, extract_with_gnu_tar, log_lines, restored, run_one
from tests.integration.test_formats import seven_zip
from tests.integration.test_sync import assert_exact_mirror, run_sync, sync_project
from tests.integration.test_worker_processes import start_worker, wait_for
from tests.treecompare import assert_same_tree

MIB = 1 << 20
LIMIT = MIB  # bytes per second
CANCEL_WITHIN_S = 3.0  # a flush interval (1 s: when the worker reads the cancel flag), a sleep, and the ending


def source_tree(root, size: int):
    """``size`` bytes of incompressible data in a few files, and one empty file."""
    root.mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "big.bin").write_bytes(os.urandom(size - size // 3 - 1000))
    (root / "sub" / "third.bin").write_bytes(os.urandom(size // 3))
    (root / "sub" / "small.txt").write_bytes(os.urandom(1000))
    (root / "empty").write_bytes(b"")
    return root


def least_seconds(size: int, limit: int = LIMIT) -> float:
    """The shortest a limited job can read ``size`` bytes: all but the bucket's first burst at the limit."""
    return (size - limit * BURST_S) / limit


@pytest.mark.parametrize(("fmt", "size"), [("tgz", 3 * MIB), ("7z", 2 * MIB)])
def test_a_limited_backup_reads_no_faster_than_the_limit_and_restores_exactly(app, tmp_path, fmt, size):
    src = source_tree(tmp_path / "src", size)
    project = create_project("limited", [src], tmp_path / "dest", archive_format=fmt, read_limit_bytes_s=LIMIT)
    started = time.monotonic()
    job = run_one(app, project)
    elapsed = time.monotonic() - started
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    assert elapsed >= least_seconds(size), elapsed
    assert any("reading the sources at most 1 MiB/s" in line for line in log_lines(job.id, "INFO"))
    [archive] = db.session.scalars(select(Archive).where(Archive.job_id == job.id)).all()
    out = tmp_path / "out"
    if fmt == "tgz":
        extract_with_gnu_tar(archive.path, out)
    else:
        seven_zip("x", f"-o{out}", archive.path)
    assert_same_tree(src, restored(out, src))


def test_a_limited_sync_copies_no_faster_than_the_limit_and_mirrors_exactly(app, tmp_path):
    size = 2 * MIB
    src = source_tree(tmp_path / "src", size)
    project_id = sync_project("limited", [src], tmp_path / "dest", read_limit_bytes_s=LIMIT)
    started = time.monotonic()
    job = run_sync(app, project_id)
    elapsed = time.monotonic() - started
    assert job.status == "succeeded", job.error_message
    assert elapsed >= least_seconds(size), elapsed
    assert_exact_mirror(src, tmp_path / "dest" / "src", ignore=set())


def _limit_noted(job_id: int) -> bool:
    """The job is reading under its limit: it logged the limit, which it does just before the first read."""
    return db.session.scalar(select(JobLog.id).where(JobLog.job_id == job_id,
                                                     JobLog.message.like("reading the sources at most%"))) is not None


@pytest.mark.parametrize("mode", ["archive", "sync"])
def test_a_cancel_lands_within_about_a_second_at_a_very_low_limit(app, tmp_path, mode):
    src = source_tree(tmp_path / "src", MIB)  # at 16 bytes a second: 18 hours
    project_id = (sync_project("crawl", [src], tmp_path / "dest", read_limit_bytes_s=16) if mode == "sync" else
                  create_project("crawl", [src], tmp_path / "dest", read_limit_bytes_s=16).id)
    job_id = queue.enqueue(db.session.get(Project, project_id), actor="test").id
    db.session.commit()
    worker = start_worker(app, "--burst")
    try:
        wait_for(lambda: _limit_noted(job_id), timeout=60, interval=0.05)
        asked = time.monotonic()
        assert queue.request_cancel(job_id, actor="test") == "running"
        wait_for(lambda: db.session.scalar(select(Job.status).where(Job.id == job_id)) == "cancelled",
                 timeout=30, interval=0.02)
        took = time.monotonic() - asked
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert took < CANCEL_WITHIN_S, (took, output)
