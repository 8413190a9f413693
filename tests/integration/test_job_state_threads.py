"""Job state is written on the job's own thread: the copy thread (and the direct-to-tape writer) touch the
database only through tape/ledger.py, the media catalog's one documented place (none at all for a directory
destination), and the catalog threads only insert member rows through catalog_stream.py. Checked on every SQL
statement a real backup runs, with groups so that copy overlaps compress."""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event, func, select

from stagebackup.extensions import db
from stagebackup.models import ArchiveMember
from stagebackup.tape import admin
from tests.integration.test_backup_job import create_project, run_one
from tests.integration.test_sync import run_sync, sync_project
from tests.integration.test_tape_backup import tape_project

MiB = 1 << 20
LEDGER = os.path.join("stagebackup", "tape", "ledger.py")
CATALOG_STREAM = os.path.join("stagebackup", "catalog_stream.py")


def tree(root, count=6, size=400_000):
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"f{i}.bin").write_bytes(os.urandom(size))
    return root


@dataclass
class Statements:
    off: list = field(default_factory=list)  # (thread name, issued from the ledger?, verb) of the rest
    catalog_threads: set[str] = field(default_factory=set)  # catalog threads that inserted member rows


@pytest.fixture
def statements_off_the_job_thread(app):
    """Every statement not on the job's (main) or heartbeat thread: a catalog thread's (an insert of member rows
    from catalog_stream.py, checked here) by thread, the others as (thread name, issued from the ledger?, verb)."""
    seen = Statements()

    def before_execute(conn, cursor, statement, parameters, context, executemany):
        thread = threading.current_thread()
        if thread is threading.main_thread() or thread.name == "heartbeat":
            return
        if thread.name.startswith("catalog-"):
            assert any(frame.filename.endswith(CATALOG_STREAM) for frame in traceback.extract_stack())
            verbs = statement.split()[:3]
            assert verbs in (["BEGIN"], ["BEGIN", "IMMEDIATE"], ["INSERT", "INTO", "archive_members"]), \
                statement
            seen.catalog_threads.add(thread.name)
            return
        from_ledger = any(frame.filename.endswith(LEDGER) for frame in traceback.extract_stack())
        seen.off.append((thread.name, from_ledger, statement.split()[0]))

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", before_execute)


def test_a_directory_backup_writes_the_database_only_on_the_job_thread(app, tmp_path, statements_off_the_job_thread):
    job = run_one(app, create_project("dir", [tree(tmp_path / "src")], tmp_path / "dest", group_max_bytes=1 * MiB))
    assert job.status == "succeeded", job.error_message
    assert statements_off_the_job_thread.off == []


def test_a_sync_writes_its_catalog_on_the_catalog_thread_and_nothing_else_off_the_job_thread(
        app, tmp_path, statements_off_the_job_thread):
    src = tree(tmp_path / "src", count=300, size=100)
    job = run_sync(app, sync_project("mirror", [src], tmp_path / "mirror"))
    assert job.status == "succeeded", job.error_message
    assert statements_off_the_job_thread.off == []  # the syncfs thread and the copy helper process: no database
    assert statements_off_the_job_thread.catalog_threads == {"catalog-1"}
    assert db.session.scalar(select(func.count(ArchiveMember.id)).where(ArchiveMember.job_id == job.id)) == 301


@pytest.mark.parametrize("direct", [False, True])
def test_a_tape_backup_touches_the_database_off_the_job_thread_only_through_the_ledger(
        app, tmp_path, direct, statements_off_the_job_thread):
    app.config["COMPRESS_DIRECTLY_TO_TAPE"] = direct
    admin.label(app.config, "vtape0", "TAPE001")
    job = run_one(app, tape_project("tape", [tree(tmp_path / "src")], group_max_bytes=1 * MiB))
    assert job.status == "succeeded", job.error_message
    seen = statements_off_the_job_thread.off
    assert seen, "the tape sink wrote its catalog rows from the copy thread"
    assert {from_ledger for _thread, from_ledger, _verb in seen} == {True}, seen
