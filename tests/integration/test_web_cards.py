"""Job cards: one partial for the page and the poll, polling that stops by itself, cheap polls."""

import re
from datetime import datetime

import pytest

from stagebackup.backup import cards, logs
from stagebackup.errors import human_bytes
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.models import Archive, Job, JobStage, Project

from .web_support import (
    add_log_lines,
    add_members,
    count_queries,
    make_project,
    poll_costs,
    queued_job,
    running_job,
)

FROZEN_NOW = datetime(2026, 11, 23, 3, 40, 0)


@pytest.fixture
def frozen(monkeypatch):
    """Page and poll compute elapsed time and report age from the same instant."""
    monkeypatch.setattr(cards, "utcnow", lambda: FROZEN_NOW)


def _running_at_frozen_time(tmp_path, **kw):
    job_id = running_job(tmp_path, **kw)
    job = db.session.get(Job, job_id)
    job.started_at = datetime(2026, 11, 23, 3, 30, 0)  # 10 min before FROZEN_NOW
    job.heartbeat_at = datetime(2026, 11, 23, 3, 39, 57)  # 3 s before
    for stage in db.session.scalars(db.select(JobStage).where(JobStage.job_id == job_id)):
        stage.started_at = job.started_at
    db.session.commit()
    return job_id


def _status_div(html: str, job_id: int) -> str:
    start = html.index(f'<div class="job-status" id="job-status-{job_id}"')
    return html[start:]


@pytest.mark.parametrize("page", ["/backup", "/backup/jobs/{id}"])
def test_the_poll_endpoint_returns_exactly_the_partial_the_page_includes(client, tmp_path, frozen, page):
    job_id = _running_at_frozen_time(tmp_path)
    html = client.get(page.format(id=job_id)).get_data(as_text=True)
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert fragment.startswith(f'<div class="job-status" id="job-status-{job_id}"')
    assert _status_div(html, job_id).startswith(fragment)  # byte for byte, figures included
    assert 'data-stage="scan" data-state="done"' in fragment and "bg-success" in fragment
    assert 'data-stage="compress" data-state="current"' in fragment and "bg-primary" in fragment
    assert 'data-stage="copy" data-state="pending"' in fragment and "bg-secondary" in fragment


def test_card_shows_progress_bytes_rate_elapsed_time_left_current_file_and_report_age(client, tmp_path, frozen):
    job_id = _running_at_frozen_time(tmp_path)  # 300 of 1200 MiB after 9:57 of reporting
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert 'class="progress-bar pct-25' in fragment and ">25%<" in fragment
    assert "300.0 MiB / 1.2 GiB" in fragment
    assert "(40 / 160 个文件)" in fragment
    rate = (300 << 20) / 597  # bytes over the 597 s between start and the last report
    assert f"{human_bytes(rate)}/s" in fragment and "514.6 KiB/s" in fragment
    assert 'data-figure="elapsed">0:10:00<' in fragment
    assert f'data-figure="eta">0:{int((900 << 20) / rate) // 60:02d}:' in fragment
    assert "3秒钟前" in fragment  # the worker's last report, as Babel words it in Chinese
    assert "logo_v3.ai" in fragment


def test_a_running_card_shows_the_current_rate_and_a_finished_one_the_average(client, tmp_path, frozen):
    job_id = _running_at_frozen_time(tmp_path)  # average so far: 514.6 KiB/s
    db.session.get(Job, job_id).rate_bytes_s = 40 << 20  # the worker's last window: 40 MiB/s
    db.session.commit()
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert "当前速率" in fragment and "40.0 MiB/s" in fragment and "514.6 KiB/s" not in fragment
    assert 'data-figure="eta">0:00:22<' in fragment  # 900 MiB left at 40 MiB/s
    job = db.session.get(Job, job_id)
    job.status, job.finished_at = "succeeded", job.heartbeat_at
    db.session.commit()
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert "平均速率" in fragment and "514.6 KiB/s" in fragment


def test_the_reporter_measures_the_rate_over_its_last_window(app, tmp_path, monkeypatch):
    from stagebackup.jobs import progress

    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    reporter = progress.JobReporter(queued_job(tmp_path), flush_interval_s=1.0)
    for _ in range(3):  # 10 MiB/s for three seconds
        clock[0] += 1
        reporter.advance(nbytes=10 << 20)
        reporter.flush()
    assert reporter.rate_bytes_s == pytest.approx(10 << 20)
    clock[0] += 1  # a stall: nothing for a second
    reporter.flush(force=True)
    assert reporter.rate_bytes_s == pytest.approx(5 << 20)  # smoothed, but it drops at once
    assert db.session.get(Job, reporter.job_id).rate_bytes_s == pytest.approx(5 << 20)


def test_a_silent_worker_is_shown_as_such(client, tmp_path, frozen):
    job_id = _running_at_frozen_time(tmp_path)
    db.session.get(Job, job_id).heartbeat_at = datetime(2026, 11, 23, 3, 38, 0)  # 2 min ago
    db.session.commit()
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert "工作进程已 0:02:00 无响应" in fragment and "text-danger" in fragment


def test_only_active_jobs_poll_and_a_finished_card_stops_polling(client, tmp_path):
    job_id = queued_job(tmp_path)
    assert 'hx-trigger="every 1s"' in client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert queue.claim(workers.register_worker("h", 1, None)) == job_id
    assert 'hx-trigger="every 1s"' in client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    db.session.get(Job, job_id).status = "waiting_media"
    db.session.commit()
    assert 'hx-trigger="every 1s"' in client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    queue.finish(job_id, "succeeded")
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert "hx-trigger" not in fragment and "hx-get" not in fragment
    assert 'data-status="succeeded"' in fragment and ">100%<" in fragment


def test_a_failed_job_shows_a_red_badge_and_its_error(client, tmp_path):
    job_id = running_job(tmp_path, done=("scan",), current=("compress",))
    queue.finish(job_id, "failed", error_class="CacheFull", message="cache directory /c is out of space")
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert 'data-stage="compress" data-state="failed"' in fragment and "bg-danger" in fragment
    assert "CacheFull" in fragment and "cache directory /c is out of space" in fragment
    assert "hx-trigger" not in fragment


def test_waiting_for_media_shows_a_yellow_badge_and_a_load_prompt(client, tmp_path):
    from stagebackup import projects

    job_id = running_job(tmp_path, done=("scan", "compress"), current=("copy",))
    job = db.session.get(Job, job_id)
    project = db.session.get(projects.Project, job.project_id)
    project.dest_pool = "night"
    job.status, job.drive = "waiting_media", "vtape0"
    db.session.commit()
    fragment = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert 'data-stage="copy" data-state="waiting"' in fragment and "bg-warning" in fragment
    assert "请在 vtape0 中装入新磁带（池 night）" in fragment


def test_unknown_job_card_is_404(client):
    assert client.get("/backup/jobs/999/card").status_code == 404


def test_a_poll_costs_one_or_two_queries_whatever_the_log_and_catalog_size(client, tmp_path):
    small = running_job(tmp_path, "small")
    big = running_job(tmp_path, "big")
    add_log_lines(small, 5)
    add_log_lines(big, 30_000)
    archive = Archive(job_id=big, seq=1, format="tgz", sha256="0" * 64, path="/b/a.tar.gz")
    db.session.add(archive)
    db.session.commit()
    add_members(big, archive.id, 20_000)
    small_costs, big_costs = poll_costs(client, small), poll_costs(client, big)
    assert small_costs == big_costs
    assert small_costs == (1, 2)  # card: job, pool and stages joined; with the log: its new lines


def test_the_overview_costs_the_same_with_one_or_many_log_lines(client, tmp_path):
    job_id = running_job(tmp_path)
    add_log_lines(job_id, 10)
    db.session.remove()
    with count_queries() as few:
        client.get("/backup")
    add_log_lines(job_id, 20_000)
    db.session.remove()
    with count_queries() as many:
        html = client.get("/backup").get_data(as_text=True)
    assert len(few) == len(many)
    assert len(re.findall(r'class="log-line"', html)) == logs.CARD_TAIL_LINES  # the card keeps the tail only



def _add_active_jobs(project, count: int) -> None:
    """Active jobs of the project, each with log lines: running backups (with a stage row), queued restores
    and verifies."""
    worker = workers.register_worker("h", 1, None)
    kinds = sorted((("backup", "restore", "verify")[i % 3] for i in range(count)), key=lambda k: k != "backup")
    for kind in kinds:  # backups first: a claim takes the oldest queued job
        params = {"target": "/r", "conflict": "skip"} if kind == "restore" else None
        job = queue.enqueue(project, actor="test", kind=kind, params=params)
        if kind == "backup":
            assert queue.claim(worker) == job.id
            db.session.add(JobStage(job_id=job.id, code="scan", started_at=FROZEN_NOW))
        add_log_lines(job.id, 40)


def _overview(client) -> tuple[str, int]:
    db.session.remove()  # nothing cached in the session: count what a fresh request sends
    with count_queries() as statements:
        html = client.get("/backup").get_data(as_text=True)
    return html, len(statements)


def test_the_overview_costs_the_same_statements_with_one_card_or_twenty(client, tmp_path):
    project = make_project(tmp_path, "多任务")
    project_id = project.id
    _add_active_jobs(project, 1)
    one_html, one = _overview(client)
    _add_active_jobs(db.session.get(Project, project_id), 19)
    many_html, many = _overview(client)
    assert one_html.count('<div class="card mb-3 job-card"') == 1
    assert many_html.count('<div class="card mb-3 job-card"') == 20
    assert len(re.findall(r'class="log-line"', many_html)) == 20 * logs.CARD_TAIL_LINES  # each card its tail
    assert one == many
