"""The terminal log: coloured tags, lines appended after a sequence number by the card's poll, a huge log
shown by its tail."""

import re

from stagebackup.backup import logs
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import JobLog

from .web_support import add_log_lines, count_queries, queued_job, running_job

LINE = re.compile(r'<div class="log-line" data-seq="(\d+)">')


def _seqs(html):
    return [int(s) for s in LINE.findall(html)]


def _poll(client, job_id, query=""):
    """The card's poll as a page showing the log sends it: the cursor's inputs ride along (hx-include)."""
    return client.get(f"/backup/jobs/{job_id}/card{'?' + query if query else ''}")


def _cursor(html):
    """The log cursor's inputs in a page or an answer: (after, tag or None), or None if it is disabled."""
    found = re.search(r'<div id="log-cursor-\d+" class="log-cursor" data-after="(\d+)"[^>]*>(.*?)</div>', html, re.S)
    inputs = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"(?! disabled)>', found.group(2)))
    return (int(inputs["after"]), inputs.get("tag")) if inputs else None


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


def test_the_card_poll_appends_only_lines_after_the_cursor_and_carries_the_next_one(client, tmp_path):
    job_id = running_job(tmp_path)
    page = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    last_seen = db.session.scalars(db.select(JobLog.id).where(JobLog.job_id == job_id)).all()[-1]
    assert _cursor(page) == (last_seen, None)
    assert f'hx-include="#log-cursor-{job_id}" hx-disinherit="hx-include"' in page  # the card's poll sends it
    card = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    nothing_new = _poll(client, job_id, f"after={last_seen}").get_data(as_text=True)
    assert nothing_new == card and 'id="log-cursor' not in nothing_new  # the card alone: the cursor stays
    add_log_lines(job_id, 3)
    body = _poll(client, job_id, f"after={last_seen}").get_data(as_text=True)
    seqs = _seqs(body)
    assert len(seqs) == 3 and min(seqs) > last_seen
    assert body.lstrip().startswith(f'<div class="job-status" id="job-status-{job_id}"')  # the card first
    assert f'<div hx-swap-oob="beforeend:#log-lines-{job_id}">' in body  # appended to the log, out of band
    assert f'<div id="log-cursor-{job_id}" class="log-cursor" data-after="{max(seqs)}" hx-swap-oob="true">' in body
    assert _cursor(body) == (max(seqs), None)


def test_the_card_stops_polling_once_the_job_ended_and_every_line_is_shown(client, tmp_path):
    job_id = queued_job(tmp_path)
    queue.request_cancel(job_id, actor="test")
    body = _poll(client, job_id, "after=0").get_data(as_text=True)
    assert "cancelled before it started" in body  # the last lines come with the last card
    assert "hx-trigger" not in body and "hx-get" not in body.split(">")[0]
    # A finished job's page renders a card without a trigger from the start.
    page = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in page


def test_a_long_backlog_is_delivered_in_bounded_polls_even_after_the_job_ended(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 2500)
    queue.finish(job_id, "succeeded")
    after, polls = 0, 0
    while True:
        body = _poll(client, job_id, f"after={after}").get_data(as_text=True)
        polls += 1
        seqs = _seqs(body)
        assert len(seqs) <= 1000
        if seqs:
            after = max(seqs)
            assert _cursor(body) == (after, None)
        if 'hx-trigger="every 1s"' not in body:  # the finished card polls on while a full batch came
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


def _mixed_log(job_id):
    for i in range(30):
        queue.append_log(job_id, ("INFO", "SKIP", "ADD")[i % 3], f"line {i:02d}")
    queue.append_log(job_id, "ERROR", "cannot read /srv/a")
    queue.append_log(job_id, "ERROR", "cannot read /srv/b")
    db.session.commit()


def _lines_of(html):
    return re.findall(r'\[(\w+)\]</span> ([^<]*)</div>', html)


def test_the_log_is_filtered_by_tag_on_the_server(client, tmp_path):
    job_id = running_job(tmp_path)
    _mixed_log(job_id)
    page = client.get(f"/backup/jobs/{job_id}?tag=skip").get_data(as_text=True)
    terminal = page[page.index('<div class="terminal"'):]
    assert {tag for tag, _ in _lines_of(terminal)} == {"SKIP"} and len(_lines_of(terminal)) == 10
    assert _cursor(terminal)[1] == "SKIP"  # the card's poll appends SKIP lines only
    assert 'class="btn btn-outline-secondary active" data-tag="SKIP"' in page
    poll = _poll(client, job_id, "after=0&tag=ERROR").get_data(as_text=True)
    assert _lines_of(poll) == [("ERROR", "cannot read /srv/a"), ("ERROR", "cannot read /srv/b")]
    assert _cursor(poll)[1] == "ERROR"
    seqs = _seqs(poll)
    earlier = client.get(f"/backup/jobs/{job_id}/log/earlier?before={seqs[1]}&tag=ERROR").get_data(as_text=True)
    assert _lines_of(earlier) == [("ERROR", "cannot read /srv/a")]


def test_an_unknown_tag_is_a_400_that_says_which_tags_exist(client, tmp_path):
    job_id = running_job(tmp_path)
    for url in [f"/backup/jobs/{job_id}/card?after=0&tag=WARN", f"/backup/jobs/{job_id}?tag=WARN",
                f"/backup/jobs/{job_id}/log/earlier?before=9&tag=WARN", f"/backup/jobs/{job_id}/log/later?tag=%3Cb%3E"]:
        response = client.get(url)
        body = response.get_data(as_text=True)
        assert response.status_code == 400, url
        assert "未知的日志标签" in body and "INFO, ADD, SYNC, PACK, SKIP, ERROR" in body
        assert "<b>" not in body  # the tag is echoed escaped


def test_the_whole_log_downloads_as_streamed_text_in_order(client, tmp_path):
    job_id = running_job(tmp_path)
    _mixed_log(job_id)
    add_log_lines(job_id, 12_000)
    total = db.session.scalar(db.select(db.func.count(JobLog.id)).where(JobLog.job_id == job_id))
    db.session.remove()
    with count_queries() as queries:
        response = client.get(f"/backup/jobs/{job_id}/log/download")
        assert response.is_streamed
        text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'attachment; filename="job-{job_id}.log"'
    lines = text.splitlines()
    assert len(lines) == total and text.endswith("\n")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[INFO\] line 00", lines[[
        i for i, line in enumerate(lines) if line.endswith("line 00")][0]])
    files = [line.rsplit(" ", 1)[1] for line in lines if "[PACK] /srv/file-" in line]
    assert files == [f"/srv/file-{i:06d}" for i in range(12_000)]  # every line, in order
    first_file = next(i for i, line in enumerate(lines) if line.endswith("/srv/file-000000"))
    assert lines[first_file - 1].endswith("[ERROR] cannot read /srv/b")
    # Read in batches, never as one query over the whole log: the job, then ceil(n / batch) + 1 reads.
    assert len(queries) == 1 + -(-total // logs.DOWNLOAD_BATCH_LINES) + 1
    assert client.get("/backup/jobs/999/log/download").status_code == 404


def test_the_first_error_of_a_100000_line_log_is_one_link_away(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 1_000)
    queue.append_log(job_id, "ERROR", "first failure, far back")
    db.session.commit()
    add_log_lines(job_id, 99_000)
    queue.append_log(job_id, "ERROR", "a later failure")
    db.session.commit()
    error_seq = db.session.scalar(db.select(JobLog.id).where(JobLog.message == "first failure, far back"))
    db.session.remove()
    with count_queries() as queries:
        page = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert len(queries) <= 8
    link = re.search(r'class="btn btn-sm btn-outline-danger log-first-error" href="([^"]+)"', page)
    assert link and link.group(1) == f"/backup/jobs/{job_id}?start={error_seq}#log-{error_seq}"
    first_error = [q for q in queries if "min(job_logs.id)" in q]
    assert len(first_error) == 1
    plan = db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + first_error[0], (job_id, "ERROR")).all()
    assert "ix_job_logs_job_id_tag_id" in str(plan)  # one seek in the (job_id, tag, id) index

    db.session.remove()
    with count_queries() as queries:
        window = client.get(link.group(1).split("#")[0]).get_data(as_text=True)
    assert len(queries) <= 9
    seqs = _seqs(window)  # the error line carries its anchor, so the regex skips it
    assert f'<div class="log-line" data-seq="{error_seq}" id="log-{error_seq}">' in window
    assert "first failure, far back" in window and len(seqs) == logs.TAIL_LINES - 1 and min(seqs) > error_seq
    assert "log/earlier?before=" in window and "正在显示日志中较早的一段" in window
    later = re.search(r'hx-get="(/backup/jobs/\d+/log/later\?after=(\d+))"', window)
    assert later and int(later.group(2)) == max(seqs)
    assert _cursor(window) is None  # a window far back appends nothing (the button pages on)
    more = client.get(later.group(1)).get_data(as_text=True)
    assert len(_seqs(more)) == logs.TAIL_LINES and min(_seqs(more)) > max(seqs) and "log/later?after=" in more


def test_later_lines_hand_over_to_the_card_poll_at_the_end(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 30)
    last = db.session.scalar(db.select(db.func.max(JobLog.id)))
    body = client.get(f"/backup/jobs/{job_id}/log/later?after={last - 5}").get_data(as_text=True)
    assert _seqs(body) == list(range(last - 4, last + 1)) and "log/later" not in body
    assert f'<div id="log-cursor-{job_id}" class="log-cursor" data-after="{last}" hx-swap-oob="true">' in body
    assert _cursor(body) == (last, None)  # enabled: the card's next poll appends from here


def test_sequence_numbers_out_of_any_range_are_refused_not_500(client, tmp_path):
    job_id = running_job(tmp_path)
    huge, negative = "9" * 30, "-" + "9" * 30
    for url in [f"/backup/jobs/{job_id}/card?after={huge}", f"/backup/jobs/{job_id}/log/earlier?before={huge}",
                f"/backup/jobs/{job_id}/log/later?after={negative}", f"/backup/jobs/{job_id}?start={huge}",
                f"/backup/jobs/{job_id}?start={negative}", f"/backup/live?after={huge}",
                f"/backup/jobs/{job_id}/card?after=x"]:
        response = client.get(url)
        assert response.status_code == 400 and "must be" in response.get_data(as_text=True), url
