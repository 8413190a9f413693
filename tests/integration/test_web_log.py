"""The terminal log: coloured tags, lines appended after a sequence number, a huge log shown by its tail."""

import re

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import JobLog

from .web_support import add_log_lines, count_queries, queued_job, running_job

LINE = re.compile(r'<div class="log-line" data-seq="(\d+)">')


def _seqs(html):
    return [int(s) for s in LINE.findall(html)]


def test_tags_are_coloured_and_messages_escaped(client, tmp_path):
    job_id = running_job(tmp_path)
    for tag in ("INFO", "ADD", "SYNC", "PACK", "SKIP", "ERROR"):
        queue.append_log(job_id, tag, f"<b>{tag}</b> /srv/\\xff name")
    db.session.commit()
    html = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert '<div class="terminal"' in html
    for tag, css in [("INFO", "tag-info"), ("ADD", "tag-ok"), ("SYNC", "tag-ok"), ("PACK", "tag-ok"),
                     ("SKIP", "tag-skip"), ("ERROR", "tag-error")]:
        assert f'<span class="log-tag {css}">[{tag}]</span> &lt;b&gt;{tag}&lt;/b&gt;' in html
    css = client.get("/static/css/app.css").get_data(as_text=True)
    assert ".terminal {" in css and "background: #0c0c0c" in css
    assert re.search(r"\.terminal \{[^}]*overflow: visible", css)  # grows with its content: no inner scroll bar
    assert "max-height" not in css and "overflow-y" not in css


def test_poll_appends_only_lines_after_seq_and_carries_the_next_seq(client, tmp_path):
    job_id = running_job(tmp_path)
    first = db.session.scalars(db.select(JobLog.id).where(JobLog.job_id == job_id)).all()
    last_seen = first[-1]
    assert client.get(f"/backup/jobs/{job_id}/log?after={last_seen}").status_code == 204  # nothing new
    add_log_lines(job_id, 3)
    body = client.get(f"/backup/jobs/{job_id}/log?after={last_seen}").get_data(as_text=True)
    seqs = _seqs(body)
    assert len(seqs) == 3 and min(seqs) > last_seen
    assert f'hx-swap-oob="true" hx-get="/backup/jobs/{job_id}/log?after={max(seqs)}" hx-trigger="every 1s"' in body
    assert f'hx-target="#log-lines-{job_id}" hx-swap="beforeend"' in body


def test_the_log_poller_stops_once_the_job_ended_and_every_line_is_shown(client, tmp_path):
    job_id = queued_job(tmp_path)
    queue.request_cancel(job_id)
    body = client.get(f"/backup/jobs/{job_id}/log?after=0").get_data(as_text=True)
    assert "cancelled before it started" in body
    poller = body[body.index('<div id="log-poller'):]
    assert "hx-trigger" not in poller and "hx-get" not in poller
    # A finished job's page renders a poller without a trigger from the start.
    page = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert "hx-trigger" not in page[page.index('<div id="log-poller'):]


def test_a_long_backlog_is_delivered_in_bounded_polls_even_after_the_job_ended(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 2500)
    queue.finish(job_id, "succeeded")
    after, polls = 0, 0
    while True:
        body = client.get(f"/backup/jobs/{job_id}/log?after={after}").get_data(as_text=True)
        polls += 1
        seqs = _seqs(body)
        assert len(seqs) <= 1000
        if seqs:
            after = max(seqs)
        if "hx-trigger" not in body:
            break
    assert polls == 3 and after == db.session.scalar(db.select(db.func.max(JobLog.id)))


def test_a_job_with_100000_lines_shows_its_tail_and_pages_back(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 100_000)
    db.session.remove()
    with count_queries() as queries:
        html = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert len(queries) <= 8  # constant: tail LIMIT 500 via the (job_id, id) index, not 100,000 rows
    seqs = _seqs(html)
    assert len(seqs) == 500 and "/srv/file-099999" in html and "/srv/file-099499" not in html
    assert len(html) < 300_000
    button = re.search(r'hx-get="(/backup/jobs/\d+/log/earlier\?before=(\d+))"', html)
    assert button and int(button.group(2)) == min(seqs)
    earlier = client.get(button.group(1)).get_data(as_text=True)
    older = _seqs(earlier)
    assert len(older) == 500 and max(older) < min(seqs) and "/srv/file-099499" in earlier
    assert "log/earlier?before=" in earlier  # and yet earlier ones
    # Paging back to the very first line ends with no button.
    first_seq = db.session.scalar(db.select(db.func.min(JobLog.id)).where(JobLog.job_id == job_id))
    first_page = client.get(f"/backup/jobs/{job_id}/log/earlier?before={first_seq + 400}").get_data(as_text=True)
    assert len(_seqs(first_page)) == 400 and "log/earlier" not in first_page
