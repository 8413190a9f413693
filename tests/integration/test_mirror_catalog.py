"""A large mirror's catalog is written by a process of its own (jobs/mirror_catalog.py): the same rows and digest
as the thread writes for a small one, on every database; a process that fails fails the job and leaves nothing;
and the process never outlives the job's process."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.jobs import mirror_catalog
from stagebackup.models import Archive, ArchiveMember
from tests.conftest import build_hostile_tree
from tests.integration.test_sync import assert_exact_mirror, log_lines, run_sync, sync_project
from tests.integration.test_worker_processes import wait_for

ROW = (ArchiveMember.parent, ArchiveMember.name, ArchiveMember.kind, ArchiveMember.size, ArchiveMember.mtime,
       ArchiveMember.mode, ArchiveMember.link_target)


def catalog(job_id: int) -> tuple[Archive, list[tuple]]:
    archive = db.session.scalars(select(Archive).where(Archive.job_id == job_id)).one()
    rows = db.session.execute(select(*ROW).where(ArchiveMember.job_id == job_id)).all()
    return archive, sorted(tuple(row) for row in rows)


@pytest.fixture
def writers(monkeypatch) -> list[str]:
    """The kind of writer each mirror's catalog got, in order."""
    seen: list[str] = []
    for cls in (mirror_catalog.CatalogThread, mirror_catalog.CatalogProcess):
        real_init = cls.__init__

        def counted(self, *args, _real=real_init, _name=cls.__name__):
            seen.append(_name)
            _real(self, *args)

        monkeypatch.setattr(cls, "__init__", counted)
    return seen


def test_the_process_writes_what_the_thread_writes(any_db_app, tmp_path, writers):
    app = any_db_app
    src = build_hostile_tree(tmp_path / "src")
    small = run_sync(app, sync_project("by thread", [src], tmp_path / "thread"))
    app.config["SYNC_CATALOG_PROCESS_MIN_BYTES"] = 0  # every mirror is "large"
    large = run_sync(app, sync_project("by process", [src], tmp_path / "process"))
    assert writers == ["CatalogThread", "CatalogProcess"]
    assert small.status == large.status == "succeeded", (small.error_message, large.error_message)
    assert_exact_mirror(src, tmp_path / "process" / "src")
    (by_thread, thread_rows), (by_process, process_rows) = catalog(small.id), catalog(large.id)
    assert process_rows == thread_rows and len(process_rows) == by_process.member_count > 10
    assert (by_process.size, by_process.sha256) == (by_thread.size, by_thread.sha256)
    assert len(by_process.sha256) == 64 and by_process.path == str(tmp_path / "process")
    # The digest the process made is the one the next run's quick check compares (a tree without a FIFO: the
    # hostile tree's is skipped, so its mirror never equals its source).
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    (plain / "sub" / "a.txt").write_text("a")
    plain_project = sync_project("plain by process", [plain], tmp_path / "plain-mirror")
    first = run_sync(app, plain_project)
    again = run_sync(app, plain_project)
    assert first.status == again.status == "succeeded" and again.catalog_job_id == first.id


def test_a_catalog_process_that_fails_fails_the_job_and_leaves_no_catalog(app, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.txt").write_text(str(i))
    app.config["SYNC_CATALOG_PROCESS_MIN_BYTES"] = 0
    # The process opens the database by the worker's URL: one it cannot open makes it fail.
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/no-such-dir/backup.db"
    job = run_sync(app, sync_project("failing", [src], tmp_path / "dest"))
    assert job.status == "failed"
    assert "writing the mirror's catalog failed" in job.error_message and "unable to open" in job.error_message
    assert any("writing the mirror's catalog failed" in line for line in log_lines(job.id, "ERROR"))
    assert not db.session.scalars(select(Archive).where(Archive.job_id == job.id)).all()
    assert not db.session.scalars(select(ArchiveMember.id).where(ArchiveMember.job_id == job.id)).all()


def test_the_catalog_process_dies_with_the_jobs_process(app, tmp_path):  # app: wait_for rolls its session back
    """A worker SIGKILLed mid-copy: its recovery deletes the unfinished rows, so no process may go on writing."""
    spool = tmp_path / "spool"
    os.mkfifo(spool)  # never written: the process waits for rows, as one mid-catalog would go on
    request = {"database_url": f"sqlite:///{tmp_path}/db.sqlite", "busy_timeout_ms": 1000, "job_id": 1,
               "archive_id": 1, "spool": str(spool), "owners": False, "cache_dir": str(tmp_path)}
    parent_script = textwrap.dedent(f"""
        import json, threading
        from stagebackup.jobs.mirror_catalog import spawn
        print(spawn(json.loads({json.dumps(json.dumps(request))})).pid, flush=True)
        threading.Event().wait()
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(mirror_catalog.__file__).resolve().parents[2])}
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True, env=env)
    child = None
    try:
        child = int(parent.stdout.readline())
        writer = wait_for(lambda: _writer_end(spool))  # the process has opened the spool: it waits for rows
        try:
            parent.kill()
            parent.wait(timeout=30)
            wait_for(lambda: not _alive(child), timeout=30)
        finally:
            os.close(writer)
    finally:  # whatever failed above, neither process outlives the test
        parent.kill()
        parent.communicate(timeout=30)
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def _writer_end(fifo: Path) -> int | None:
    """The FIFO opened for writing, once a reader has it open; None before."""
    try:
        return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader yet
            return None
        raise


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie nobody has reaped yet is dead
