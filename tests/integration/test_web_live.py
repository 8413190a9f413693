"""The backup page's live regions (drive card, each project's 上次备份, 最近结束的任务): the page and the
live poll render the same partials, the poll says 204 while nothing changed, and it costs a bounded number
of statements whatever the number of projects."""

from __future__ import annotations

import re
import time

from stagebackup.backup import live
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Job, Project
from stagebackup.tape_models import Drive
from tests.conftest import make_app

from .web_support import count_queries, live_poll_url, make_project, queued_job, running_job

OOB = ' hx-swap-oob="true"'


def _region(html: str, element_id: str) -> str:
    """The element with this id, up to its closing tag (the regions do not nest divs of their own name)."""
    start = html.index(f'id="{element_id}"')
    start = html.rindex("<div", 0, start)
    depth, pos = 0, start
    for match in re.finditer(r"<(/?)div\b", html[start:]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            pos = start + match.end()
            break
    return html[start:html.index(">", pos) + 1]


def _changed(client, page_html: str) -> str:
    response = client.get(live_poll_url(page_html))
    assert response.status_code == 200, "the poll did not see the change"
    return response.get_data(as_text=True)


def test_the_poll_returns_exactly_the_regions_the_page_shows(client, tmp_path):
    job_id = running_job(tmp_path)
    done = queue.enqueue(make_project(tmp_path, "b"), remark="夜间", actor="test")
    queue.finish(done.id, "succeeded")
    db.session.add(Drive(name="vtape0", device="/v/vtape0", online=True, busy_job_id=job_id))
    db.session.commit()
    page = client.get("/backup").get_data(as_text=True)
    answer = client.get("/backup/live?after=0&v=stale").get_data(as_text=True)
    project_ids = db.session.scalars(db.select(Project.id)).all()
    for element_id in ["drive-panel", "recent-jobs"] + [f"last-backup-{pid}" for pid in project_ids]:
        assert _region(answer, element_id) == _region(page, element_id).replace(
            f'id="{element_id}"', f'id="{element_id}"{OOB}', 1)
    assert f"忙：任务 #{job_id}" in _region(page, "drive-panel")
    assert f'data-job="{done.id}"' in _region(page, "recent-jobs") and "夜间" in _region(page, "recent-jobs")


def test_an_unchanged_page_gets_204_and_every_change_is_sent(client, tmp_path):
    job_id = running_job(tmp_path)
    project_id = db.session.get(Job, job_id).project_id
    page = client.get("/backup").get_data(as_text=True)
    assert client.get(live_poll_url(page)).status_code == 204
    assert "空闲" not in _region(page, "drive-panel")  # not reported yet

    db.session.add(Drive(name="vtape0", device="/v/vtape0", online=True, busy_job_id=job_id))
    db.session.commit()
    answer = _changed(client, page)
    assert f"忙：任务 #{job_id}" in _region(answer, "drive-panel")
    assert 'data-status="running"' in _region(answer, f"last-backup-{project_id}")
    assert "还没有结束的任务" in _region(answer, "recent-jobs")
    assert client.get(live_poll_url(answer)).status_code == 204  # the answer carries the new digest

    db.session.get(Drive, "vtape0").busy_job_id = None
    queue.finish(job_id, "failed", message="boom")
    db.session.commit()
    answer = _changed(client, answer)
    assert "空闲" in _region(answer, "drive-panel") and "忙：任务" not in answer
    assert 'data-status="failed"' in _region(answer, f"last-backup-{project_id}")
    assert f'data-job="{job_id}"' in _region(answer, "recent-jobs")


def test_a_project_card_shows_its_last_backup_never_a_restore_or_verify(client, tmp_path):
    project = make_project(tmp_path)
    backup = queue.enqueue(project, actor="test")
    queue.finish(backup.id, "succeeded")
    verify = queue.enqueue(project, kind="verify", source_job_id=backup.id, actor="test")
    queue.finish(verify.id, "failed", message="checksum mismatch")
    restore = queue.enqueue(project, kind="restore", source_job_id=backup.id, actor="test")
    db.session.commit()
    region = _region(client.get("/backup").get_data(as_text=True), f"last-backup-{project.id}")
    assert "上次备份" in region and f"#{backup.id}<" in region and 'data-status="succeeded"' in region
    assert f"#{verify.id}<" not in region and f"#{restore.id}<" not in region
    assert live.last_backups()[project.id].id == backup.id


def test_a_project_without_backups_has_an_empty_slot_the_poll_can_fill(client, tmp_path):
    project = make_project(tmp_path)
    page = client.get("/backup").get_data(as_text=True)
    assert _region(page, f"last-backup-{project.id}") == (
        f'<div class="small last-backup" id="last-backup-{project.id}"></div>')
    job = queue.enqueue(project, actor="test")
    db.session.commit()
    answer = _changed(client, page)
    assert f'id="job-{job.id}"' in answer  # its card
    assert 'data-status="queued"' in _region(answer, f"last-backup-{project.id}")


def _poll_cost(client) -> int:
    db.session.remove()
    with count_queries() as queries:
        assert client.get("/backup/live?after=0&v=stale").status_code == 200
    return len(queries)


def test_a_poll_costs_the_same_with_one_project_or_many(client, tmp_path):
    queued_job(tmp_path, "p0")
    one = _poll_cost(client)
    for i in range(1, 8):
        project = make_project(tmp_path, f"p{i}")
        for _ in range(3):
            job = queue.enqueue(project, actor="test")
            queue.finish(job.id, "succeeded")
        queue.enqueue(project, kind="verify", source_job_id=job.id, actor="test")
    db.session.commit()
    many = _poll_cost(client)
    # new cards: jobs with their stages, their log tails; drive card: drives and jobs waiting for media; last
    # backups: one statement for every project; recently finished: one.
    assert one == many == 6


def test_the_last_backup_of_each_project_is_an_index_seek_per_project(app):
    statement = str(live.last_backups_query().compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = " ".join(str(row) for row in db.session.execute(db.text("EXPLAIN QUERY PLAN " + statement)))
    assert "ix_jobs_project_created" in plan, plan



def test_the_last_backups_statement_is_built_once():
    # Building this correlated statement cost more CPU (about 2.6 ms) than running it: a poll reuses it.
    assert live.last_backups_query() is live.last_backups_query()


def test_open_pages_share_one_rendering_of_the_regions_per_language(tmp_path):
    """As the server runs by default: the regions are rendered once per language for every poll within
    ``LIVE_REGIONS_SHARED_S``, and a change still reaches every page soon after. Requests run outside the
    test's app context, as on a server (a shared context would keep the first request's language)."""
    shared_app = make_app(tmp_path, LIVE_REGIONS_SHARED_S=0.3)
    with shared_app.app_context():
        project_id = make_project(tmp_path, "shared").id
    client, english = shared_app.test_client(), shared_app.test_client(user="viewer")
    english.set_cookie("lang", "en")
    page = client.get("/backup").get_data(as_text=True)
    url = "/backup/live?after=0&v=stale"
    with shared_app.app_context():
        _poll_cost(client)
        with count_queries() as queries:
            again = client.get(url)
        assert again.status_code == 200 and len(queries) == 1  # only the look-up of new cards
    assert "Tape drives" in english.get(url).get_data(as_text=True)  # not the Chinese rendering
    assert "Tape drives" not in client.get(url).get_data(as_text=True)

    with shared_app.app_context():
        job_id = queue.enqueue(db.session.get(Project, project_id), actor="test").id
        queue.finish(job_id, "succeeded")
        db.session.commit()
    deadline = time.monotonic() + 10
    while f'data-job="{job_id}"' not in client.get(url).get_data(as_text=True):
        assert time.monotonic() < deadline, "the finished job never reached the shared rendering"
        time.sleep(0.05)  # the next poll
    assert client.get(live_poll_url(page)).status_code == 200  # the page's digest is out of date now
    with shared_app.app_context():
        db.engine.dispose()
