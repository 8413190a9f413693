"""Requests that only read (GET and HEAD) open the database read-only: on SQLite a plain BEGIN, which takes no
write lock (tests/integration/test_web.py), on PostgreSQL no transaction at all (``dbtypes.begin_read_only``).

On PostgreSQL a transaction's ``now()`` is the time it began; outside one, each statement's own. That tells,
from the server's side, whether a connection was in a transaction.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text

from stagebackup.dbtypes import begin_read_only
from stagebackup.extensions import db
from stagebackup.models import Job
from tests.integration.web_support import add_log_lines, running_job


def two_nows(connection) -> tuple:
    """``now()`` in two statements 10 ms apart."""
    first = connection.execute(text("SELECT now()")).scalar_one()
    connection.execute(text("SELECT pg_sleep(0.01)"))
    return first, connection.execute(text("SELECT now()")).scalar_one()


@pytest.mark.postgres
def test_a_read_only_request_runs_outside_a_transaction_on_postgresql(pg_app):
    first, second = two_nows(begin_read_only(db.session()))
    assert second > first  # each statement its own: no BEGIN was sent


@pytest.mark.postgres
def test_the_connection_is_transactional_again_for_the_next_request(pg_app, tmp_path):
    begin_read_only(db.session()).execute(text("SELECT 1"))
    db.session.remove()  # the end of the read-only request: its connection goes back to the pool
    assert db.engine.pool.checkedin() == 1  # … the very one the next session takes

    first, second = two_nows(db.session.connection())
    assert second == first  # one transaction
    job_id = running_job(tmp_path, "written")  # commits
    db.session.execute(Job.__table__.update().where(Job.id == job_id).values(remark="rolled back"))
    db.session.rollback()
    assert db.session.scalar(select(Job.remark).where(Job.id == job_id)) is None


def test_pages_and_polls_answer_with_their_lines_on_every_database(any_db_app, tmp_path):
    """The whole request path, read-only: the sign-in gate's user, the card with its log's new lines (every
    tag, or one), the live poll; the statements they run are built once for every database."""
    job_id = running_job(tmp_path, "polled")
    add_log_lines(job_id, 3, tag="PACK")
    add_log_lines(job_id, 2, tag="ERROR")
    db.session.remove()
    client = any_db_app.test_client()
    for url in ("/backup", f"/backup/jobs/{job_id}", "/backup/live?after=0"):
        assert client.get(url).status_code == 200, url
    every = client.get(f"/backup/jobs/{job_id}/card?after=0").get_data(as_text=True)
    assert "polled" in every and re.findall(r"\[(\w+)\]</span>", every)[-5:] == ["PACK"] * 3 + ["ERROR"] * 2
    errors = client.get(f"/backup/jobs/{job_id}/card?after=0&tag=ERROR").get_data(as_text=True)
    assert re.findall(r"\[(\w+)\]</span>", errors) == ["ERROR", "ERROR"]
