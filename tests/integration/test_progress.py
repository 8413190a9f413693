"""Progress reporting: throttled writes, immediate stage changes, cancel and stop checks."""

import threading

import pytest
from sqlalchemy import event

from stagebackup.errors import JobCancelled, WorkerStopping
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.jobs.progress import JobReporter
from stagebackup.models import Job, JobLog, JobStage, Project


@pytest.fixture
def running_job(app):
    project = Project(name="p", sources=["/srv"], includes=[], excludes=[], dest_path="/b")
    db.session.add(project)
    db.session.commit()
    job = queue.enqueue(project, actor="test")
    assert queue.claim(workers.register_worker("h", 1, None)) == job.id
    return job.id


def count_statements(prefix):
    seen = []

    def before(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(prefix):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", before)


def test_progress_writes_are_throttled_but_stage_changes_are_immediate(app, running_job):
    reporter = JobReporter(running_job, flush_interval_s=60)
    reporter.set_totals(bytes_total=10_000, files_total=100)
    updates, stop = count_statements("UPDATE JOBS")
    try:
        reporter.stage_started("scan")  # immediate
        for _ in range(100):
            reporter.advance(nbytes=100, files=1, current=b"/srv/\xff.txt")
            reporter.log("PACK", "file")
            reporter.checkpoint()
    finally:
        stop()
    assert len(updates) == 1  # only the stage change wrote; the 100 files wait for the next interval
    assert db.session.get(JobStage, (running_job, "scan")).started_at is not None
    reporter.stage_finished("scan")  # flushes everything at once
    job = db.session.get(Job, running_job)
    db.session.refresh(job)
    assert (job.progress, job.files_done, job.current_file) == (99, 100, "/srv/\\xff.txt")
    assert db.session.query(JobLog).filter_by(job_id=running_job, tag="PACK").count() == 100


def test_cancel_flag_and_worker_stop_are_seen_at_the_next_checkpoint(app, running_job):
    reporter = JobReporter(running_job, flush_interval_s=0)
    queue.request_cancel(running_job, actor="test")
    with pytest.raises(JobCancelled):
        reporter.checkpoint()
    stop = threading.Event()
    stop.set()
    with pytest.raises(WorkerStopping):
        JobReporter(running_job, stop_event=stop).checkpoint()


def test_percent_is_whole_and_never_reports_100_before_the_end(app, running_job):
    reporter = JobReporter(running_job)
    reporter.set_totals(bytes_total=3, files_total=1)
    reporter.advance(nbytes=1)
    assert reporter.percent == 33
    reporter.advance(nbytes=2)
    assert reporter.percent == 99
