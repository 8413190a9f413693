"""Helpers for the web tests: projects and jobs in given states, CSRF tokens, SQL statement counting."""

from __future__ import annotations

import html
import re
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, insert

from stagebackup import project_checks, projects
from stagebackup.dbtypes import utcnow
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.models import ArchiveMember, JobLog, JobStage

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SIGNED_IN_USER_LOOKUP = re.compile(r"^SELECT users\.id, users\.name, .*\sFROM users\s+WHERE users\.id = ", re.S)
LIVE_POLLER = re.compile(r'<div id="live-poller"[^>]*hx-get="([^"]+)"')


def make_project(tmp_path, name="设计稿", **spec):
    src = tmp_path / f"src-{len(list(tmp_path.glob('src-*')))}"
    src.mkdir()
    spec.setdefault("dest_dir", str(tmp_path / "dest"))
    return projects.create(project_checks.ProjectSpec(name=name, sources=[str(src)], **spec), actor="test")


def queued_job(tmp_path, name="设计稿", remark=None) -> int:
    return queue.enqueue(make_project(tmp_path, name), remark=remark, actor="test").id


def running_job(tmp_path, name="设计稿", *, done=("scan",), current=("compress",), bytes_done=300 << 20,
                bytes_total=1200 << 20, started_s_ago=60, heartbeat_s_ago=1) -> int:
    """A claimed job with some stages done and some current, as a worker would leave it mid-run."""
    job_id = queued_job(tmp_path, name)
    assert queue.claim(workers.register_worker("h", 1, None)) == job_id
    job = db.session.get(queue.Job, job_id)
    now = utcnow()
    job.started_at = now - timedelta(seconds=started_s_ago)
    job.heartbeat_at = now - timedelta(seconds=heartbeat_s_ago)
    job.bytes_done, job.bytes_total, job.files_done, job.files_total = bytes_done, bytes_total, 40, 160
    job.progress = int(100 * bytes_done / bytes_total) if bytes_total else 0
    job.current_file = "/srv/projects/客户A/logo_v3.ai"
    for code in done:
        db.session.add(JobStage(job_id=job_id, code=code, started_at=job.started_at, finished_at=now))
    for code in current:
        db.session.add(JobStage(job_id=job_id, code=code, started_at=now))
    db.session.commit()
    return job_id


def add_log_lines(job_id: int, count: int, tag: str = "PACK") -> None:
    now = utcnow()
    rows = [{"job_id": job_id, "at": now, "tag": tag, "message": f"/srv/file-{i:06d}"} for i in range(count)]
    for start in range(0, count, 20_000):
        db.session.execute(insert(JobLog), rows[start:start + 20_000])
    db.session.commit()


def add_members(job_id: int, archive_id: int, count: int) -> None:
    rows = [
        {"job_id": job_id, "archive_id": archive_id, "parent": "d", "name": f"f{i}", "kind": "file", "size": i}
        for i in range(count)
    ]
    db.session.execute(insert(ArchiveMember), rows)
    db.session.commit()


def live_poll_url(page: str) -> str:
    """The URL the backup page's live poller asks next (from the page or from a poll's answer)."""
    match = LIVE_POLLER.search(page)
    assert match, "no live poller"
    return html.unescape(match.group(1))


def csrf_token(client, path="/backup") -> str:
    match = CSRF_META.search(client.get(path).get_data(as_text=True))
    assert match, "the page carries no csrf-token meta tag"
    return match.group(1)


@contextmanager
def count_queries():
    """SQL statements (SELECT/INSERT/UPDATE/DELETE) sent while the block runs; BEGIN and PRAGMA are not
    queries, and neither is the sign-in gate's look-up of the signed-in user (one primary-key read per
    request, whatever the page: tests/integration/test_auth.py counts it)."""
    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        if SIGNED_IN_USER_LOOKUP.search(statement):
            return
        if statement.lstrip().split(None, 1)[0].upper() in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def poll_costs(client, job_id: int) -> tuple[int, int]:
    """Statements a poll of the job's card costs alone and with the log's cursor (``after=0``: the page shows
    the log), each from a fresh session."""
    db.session.remove()  # nothing cached in the session: count what a fresh request sends
    with count_queries() as card_queries:
        assert client.get(f"/backup/jobs/{job_id}/card").status_code == 200
    db.session.remove()
    with count_queries() as with_log_queries:
        assert client.get(f"/backup/jobs/{job_id}/card?after=0").status_code == 200
    return len(card_queries), len(with_log_queries)
