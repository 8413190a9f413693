"""Run now with a remark, cancel from the card, new jobs appearing on an open page, history and job page."""

import json
import re

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Archive, AuditEvent, Job, Project
from stagebackup.tape_models import Tape, TapeFile

from .web_support import csrf_token, live_poll_url, make_project, queued_job, running_job


def test_run_now_with_a_remark_queues_a_manual_job_and_audits_it(client, tmp_path):
    project_id = make_project(tmp_path).id
    html = client.get("/backup").get_data(as_text=True)
    assert f'action="/backup/projects/{project_id}/run"' in html and 'name="remark"' in html
    response = client.post(f"/backup/projects/{project_id}/run",
                           data={"remark": " 首次全量 ", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    job = db.session.scalar(db.select(Job))
    assert (job.trigger, job.remark, job.status) == ("manual", "首次全量", "queued")
    assert response.headers["Location"].endswith(f"/backup#job-{job.id}")
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "job.run"))
    assert event.remark == "首次全量" and event.target == f"job:{job.id}" and event.actor.startswith("web:")
    page = client.get("/backup").get_data(as_text=True)
    assert f"已为 设计稿 排队任务 #{job.id}。" in page  # flashed
    card = client.get(f"/backup/jobs/{job.id}/card").get_data(as_text=True)
    assert '<span class="text-body-secondary">备注:</span> 首次全量' in card


def test_run_now_twice_says_the_project_already_has_a_queued_job(client, tmp_path):
    project_id = make_project(tmp_path).id
    token = csrf_token(client)
    client.post(f"/backup/projects/{project_id}/run", data={"csrf_token": token})
    client.post(f"/backup/projects/{project_id}/run", data={"csrf_token": token})
    page = client.get("/backup").get_data(as_text=True)
    assert "已有一个排队中的任务 (#1)" in page
    assert db.session.scalar(db.select(db.func.count(Job.id))) == 1


def test_run_now_refuses_an_overlong_remark_with_a_message(client, tmp_path):
    project_id = make_project(tmp_path).id
    client.post(f"/backup/projects/{project_id}/run", data={"remark": "x" * 2001, "csrf_token": csrf_token(client)})
    assert db.session.scalar(db.select(db.func.count(Job.id))) == 0
    assert "alert-danger" in client.get("/backup").get_data(as_text=True)


def test_cancel_from_the_card_asks_for_confirmation_and_is_audited(client, tmp_path):
    job_id = running_job(tmp_path)
    card = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    assert f'hx-post="/backup/jobs/{job_id}/cancel"' in card and "hx-confirm=" in card
    response = client.post(f"/backup/jobs/{job_id}/cancel",
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client)})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith(f'<div class="job-status" id="job-status-{job_id}"')
    assert "正在取消…" in body and "job-cancel" not in body
    db.session.expire_all()
    assert db.session.get(Job, job_id).cancel_requested
    assert db.session.scalar(db.select(AuditEvent.target).where(AuditEvent.action == "job.cancel")) == f"job:{job_id}"


def test_jobs_queued_elsewhere_appear_on_an_open_page(client, tmp_path):
    first = queued_job(tmp_path, "a")
    html = client.get("/backup").get_data(as_text=True)
    poll = live_poll_url(html)
    assert poll.startswith(f"/backup/live?after={first}&v=")
    assert 'hx-trigger="every 1s" hx-target="#active-jobs" hx-swap="beforeend"' in html
    assert client.get(poll).status_code == 204  # nothing new, nothing changed
    second = queued_job(tmp_path, "b")  # e.g. `flask jobs run b` or the scheduler
    body = client.get(poll).get_data(as_text=True)
    assert f'id="job-{second}"' in body and f'id="job-{first}"' not in body
    assert live_poll_url(body).startswith(f"/backup/live?after={second}&v=")
    assert '<div id="live-poller" class="d-none" hx-swap-oob="true"' in body


def test_history_lists_finished_jobs_newest_first_with_filters_and_pages(client, tmp_path):
    make_project(tmp_path, "a")
    make_project(tmp_path, "b")
    projects = {p.name: p for p in db.session.scalars(db.select(Project))}
    ids = []
    for i in range(30):
        job = queue.enqueue(projects["a" if i % 3 else "b"], remark=f"r{i}", actor="test")
        queue.finish(job.id, "failed" if i % 5 == 0 else "succeeded", message="boom" if i % 5 == 0 else None)
        ids.append(job.id)
    active = queue.enqueue(projects["a"], actor="test").id
    page1 = client.get("/backup/history").get_data(as_text=True)
    rows = [int(x) for x in re.findall(r'<tr data-job="(\d+)">', page1)]
    assert rows == sorted(ids, reverse=True)[:25] and active not in rows
    assert "r29" in page1 and 'rel="next"' in page1
    page2 = client.get("/backup/history?page=2").get_data(as_text=True)
    assert "r0" in page2 and 'rel="prev"' in page2
    failed_b = client.get("/backup/history?project=b&status=failed").get_data(as_text=True)
    rows = [int(x) for x in re.findall(r'<tr data-job="(\d+)">', failed_b)]
    assert rows == [ids[i] for i in (15, 0)]  # b is every third job, failed every fifth


def test_job_page_shows_stage_timings_archives_and_tape_files(client, tmp_path):
    job_id = running_job(tmp_path, done=("scan", "compress", "copy", "finalize"), current=())
    archive = Archive(job_id=job_id, seq=1, format="tgz", sha256="ab" * 32, path="/b/x_part001.tar.gz",
                      size=5 << 20, member_count=12, location_kind="tape")
    tape = Tape(label="L00001", uuid="u")
    db.session.add_all([archive, tape])
    db.session.flush()
    db.session.add(TapeFile(tape_id=tape.id, file_number=1, kind="archive", archive_id=archive.id, job_id=job_id,
                            block_size=262144, blocks=20, bytes=5 << 20))
    db.session.commit()
    queue.finish(job_id, "succeeded")
    html = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    assert html.count('<tr data-stage="') == 4 and "0:01:00" in html  # scan took the minute since start
    assert "/b/x_part001.tar.gz" in html and "ab" * 32 in html and "5.0 MiB" in html
    assert "<code>L00001</code>" in html and "256.0 KiB" in html
    assert client.get("/backup/jobs/424242").status_code == 404


def test_a_failed_or_interrupted_job_can_be_rerun_from_its_card(client, tmp_path):
    job_id = running_job(tmp_path)
    queue.finish(job_id, "interrupted", error_class="WorkerLost", message="worker 1 silent for 2 min")
    card = client.get(f"/backup/jobs/{job_id}/card").get_data(as_text=True)
    project_id = db.session.get(Job, job_id).project_id
    assert f'hx-post="/backup/projects/{project_id}/run"' in card and "job-rerun" in card
    remark = re.search(r"hx-vals='([^']*)'", card).group(1)
    response = client.post(f"/backup/projects/{project_id}/run", data=json.loads(remark),
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 204 and response.headers["HX-Redirect"].startswith("/backup#job-")
    rerun = db.session.scalar(db.select(Job).where(Job.id != job_id))
    assert rerun.remark == f"重新运行 #{job_id}" and rerun.status == "queued"
    assert "job-rerun" not in client.get(f"/backup/jobs/{rerun.id}/card").get_data(as_text=True)


def test_job_page_lists_tape_files_in_tape_order(client, tmp_path):
    """Archives written out of their own order (a second archive first on a new cartridge) are listed as the
    cartridges hold them: by tape label, then file number."""
    job_id = running_job(tmp_path, done=("scan", "compress", "copy", "finalize"), current=())
    first = Archive(job_id=job_id, seq=1, format="tgz", sha256="ab" * 32, path="/b/1", location_kind="tape")
    second = Archive(job_id=job_id, seq=2, format="tgz", sha256="cd" * 32, path="/b/2", location_kind="tape")
    tapes = [Tape(label="L00002", uuid="u2"), Tape(label="L00001", uuid="u1")]
    db.session.add_all([first, second, *tapes])
    db.session.flush()
    placed = [(second, tapes[1], 1), (first, tapes[1], 2), (first, tapes[0], 1)]  # (archive, tape, file number)
    db.session.add_all([TapeFile(tape_id=tape.id, file_number=number, kind="archive", archive_id=archive.id,
                                 job_id=job_id, block_size=262144, blocks=1, bytes=1)
                        for archive, tape, number in placed])
    db.session.commit()
    queue.finish(job_id, "succeeded")
    html = client.get(f"/backup/jobs/{job_id}").get_data(as_text=True)
    rows = re.findall(r"<td><code>(L\d+)</code></td><td>(\d+)</td>", html)
    assert rows == [("L00001", "1"), ("L00001", "2"), ("L00002", "1")]
