"""Notifications through Apprise to real receivers on loopback: mail to an aiosmtpd server and a JSON webhook
to a local HTTP server. Job endings and waiting for a tape go to the outbox in the job's transaction; the
scheduler's courier delivers them, retries a failing target and never changes the job."""

from __future__ import annotations

import email
import json
import logging
import shutil
import socket
import threading
from datetime import timedelta
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from stagebackup.dbtypes import utcnow
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.progress import JobReporter
from stagebackup.jobs.worker import Worker
from stagebackup.models import FAILED, SUCCEEDED, Job, Notification, Project, Secret
from stagebackup.notify import delivery, targets
from stagebackup.notify.courier import Courier

from .test_scheduler_processes import schedulers  # noqa: F401 - the fixture
from .test_worker_processes import wait_for
from .web_support import make_project, running_job

BASE_URL = "https://backup.example.org/sb"


class Receiver(ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it; answers 500 to the first ``fail_first`` requests."""

    def __init__(self):
        self.bodies: list[dict] = []
        self.fail_first = 0

        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    mailbox.url = f"mailto://127.0.0.1:{port}?from=stagebackup@example.org&to=ops@example.org&mode=insecure"
    yield mailbox
    controller.stop()


@pytest.fixture
def app(tmp_path):
    from tests.conftest import make_app

    application = make_app(tmp_path, BASE_URL=BASE_URL, JOB_MAX_ATTEMPTS=1, NOTIFY_MAX_ATTEMPTS=3)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def run_worker(app) -> None:
    assert Worker(app, burst=True).run() == 0


def failing_project(tmp_path, name="设计稿"):
    project = make_project(tmp_path, name)
    shutil.rmtree(project.sources[0])  # the source is gone: the backup fails with the reason
    return project


def subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def text_body(message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode("utf-8")


def test_a_failed_job_is_mailed_in_chinese_and_posted_in_english_with_a_link(app, tmp_path, smtp, receiver):
    targets.add("值班邮箱", smtp.url, project=None, actor="test")
    targets.add("hook", receiver.url, project=None, language="en", actor="test")
    job = queue.enqueue(failing_project(tmp_path), actor="test")
    run_worker(app)
    assert db.session.get(Job, job.id).status == FAILED
    assert delivery.deliver_due() == (2, 0)

    [mail] = smtp.messages
    assert subject(mail) == f"[StageBackup] 设计稿：任务 #{job.id} 失败"
    assert "不存在" in text_body(mail)  # the job's reason, in Chinese
    assert f"{BASE_URL}/backup/jobs/{job.id}\n" in text_body(mail) + "\n"  # the job's page (it ends the body)
    [hook] = receiver.bodies
    assert hook["title"] == f"[StageBackup] 设计稿: job #{job.id} failed"
    assert "does not exist" in hook["message"] and hook["message"].endswith(f"{BASE_URL}/backup/jobs/{job.id}")
    assert hook["type"] == "failure"
    assert delivery.deliver_due() == (0, 0)  # delivered once


def test_success_is_off_by_default_and_a_project_target_hears_only_its_project(app, tmp_path, receiver):
    mine, other = make_project(tmp_path, "mine"), make_project(tmp_path, "other")
    targets.add("all-default", receiver.url, project=None, actor="test")
    targets.add("mine-success", receiver.url, project=mine, events=["succeeded"], actor="test")
    queue.enqueue(mine, actor="test")
    queue.enqueue(other, actor="test")
    run_worker(app)
    assert {j.status for j in db.session.scalars(select(Job))} == {SUCCEEDED}
    rows = db.session.scalars(select(Notification)).all()
    assert [(r.event, r.project_id) for r in rows] == [("succeeded", mine.id)]


def test_a_failing_target_is_logged_retried_and_never_touches_the_job(app, tmp_path, receiver, caplog):
    targets.add("hook", receiver.url, project=None, language="en", actor="test")
    targets.add("nobody-listens", "json://127.0.0.1:9/hook", project=None, actor="test")
    job = queue.enqueue(failing_project(tmp_path), actor="test")
    run_worker(app)
    receiver.fail_first = 1
    with caplog.at_level(logging.WARNING, logger="stagebackup.notify.delivery"):
        assert delivery.deliver_due() == (0, 2)
    assert "retrying" in caplog.text and "nobody-listens" in caplog.text
    rows = {r.target_id: r for r in db.session.scalars(select(Notification))}
    assert all(r.attempts == 1 and r.last_error and r.delivered_at is None for r in rows.values())
    assert delivery.deliver_due() == (0, 0)  # not before its backoff
    later = utcnow() + timedelta(minutes=2)
    assert delivery.deliver_due(now=later) == (1, 1)
    assert len(receiver.bodies) == 1
    assert delivery.deliver_due(now=later + timedelta(minutes=5)) == (0, 1)  # the third attempt: given up
    given_up = db.session.scalars(select(Notification).where(Notification.gave_up_at.is_not(None))).one()
    assert given_up.attempts == 3 and "Connection error" in given_up.last_error
    job = db.session.get(Job, job.id)
    assert (job.status, job.attempts) == (FAILED, 1)


def test_waiting_for_a_tape_is_told_once_with_the_pool(app, tmp_path, receiver):
    targets.add("hook", receiver.url, project=None, language="en", actor="test")
    job_id = running_job(tmp_path, "磁带项目")
    db.session.get(Project, db.session.get(Job, job_id).project_id).dest_pool = "offsite"
    db.session.commit()
    reporter = JobReporter(job_id, flush_interval_s=0.05)
    reporter.waiting_for_media("load a new tape in vtape0 (pool offsite): tape A00001 is full")
    reporter.waiting_for_media("load a new tape in vtape0 (pool offsite): tape A00002 belongs to pool x")
    assert delivery.deliver_due() == (1, 0)
    [hook] = receiver.bodies
    assert hook["title"] == f"[StageBackup] 磁带项目: job #{job_id} is waiting for a tape"
    assert "pool offsite" in hook["message"] and "A00001 is full" in hook["message"]
    reporter.media_ready("tape A00003 loaded: continuing")
    reporter.waiting_for_media("load a new tape in vtape0 (pool offsite): tape A00003 is full")
    assert delivery.deliver_due() == (1, 0)  # a new wait is a new message


def test_the_scheduler_courier_tells_of_a_project_without_a_good_backup(app, tmp_path, receiver):
    stale, fresh = make_project(tmp_path, "stale"), make_project(tmp_path, "fresh")
    for project, hours_ago in ((stale, 50), (fresh, 2)):
        db.session.add(Job(project_id=project.id, project_name=project.name, kind="backup", flow="backup-directory",
                           status=SUCCEEDED, finished_at=utcnow() - timedelta(hours=hours_ago)))
        project.created_at = utcnow() - timedelta(days=30)
    db.session.commit()
    targets.add("hook", receiver.url, project=None, language="en", events=["stale"], stale_after_hours=48,
                actor="test")
    holding = False
    courier = Courier(app, lambda: holding)
    courier.tick()
    assert db.session.scalar(select(Notification.id)) is None  # not the lease holder: nothing
    holding = True
    courier.tick()
    [hook] = receiver.bodies
    assert hook["title"] == "[StageBackup] stale: no good backup for 48 hours"
    assert f"{BASE_URL}/backup" in hook["message"]
    courier._stale_at = float("-inf")
    courier.tick()
    assert len(receiver.bodies) == 1  # once per 48 hours while it stays stale


def test_notify_cli_stores_the_url_encrypted_and_shows_it_masked(app, receiver):
    runner = app.test_cli_runner()
    url = "json://hookuser:hunter2secret@127.0.0.1:9/hook"
    added = runner.invoke(args=["notify", "add", "ops", "--event", "failed", "--language", "en"], input=url + "\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(args=["notify", "list", "--json"])
    [row] = json.loads(listed.output)
    assert row["events"] == ["failed"] and row["project"] is None
    assert "hunter2secret" not in listed.output and "hookuser" in row["url"]
    assert all(b"hunter2secret" not in s.ciphertext for s in db.session.scalars(select(Secret)))
    failed = runner.invoke(args=["notify", "test", "ops"])
    assert failed.exit_code == 1 and "Connection error" in failed.output
    db.session.rollback()
    runner.invoke(args=["notify", "add", "ok"], input=receiver.url + "\n")
    assert runner.invoke(args=["notify", "test", "ok"]).exit_code == 0
    assert receiver.bodies[0]["title"] == "[StageBackup] 测试消息"
    bad = runner.invoke(args=["notify", "add", "bad"], input="nonsense://x\n")
    assert bad.exit_code == 2 and "Apprise" in bad.output
    assert runner.invoke(args=["notify", "remove", "ops"]).exit_code == 0
    assert runner.invoke(args=["notify", "remove", "ops"]).exit_code == 3


def test_a_running_scheduler_process_delivers_what_a_job_left_in_the_outbox(
        app, tmp_path, receiver, schedulers, monkeypatch):  # noqa: F811 - the fixture imported above
    monkeypatch.setenv("STAGEBACKUP_NOTIFY_POLL_INTERVAL_S", "0.2")
    monkeypatch.setenv("STAGEBACKUP_BASE_URL", BASE_URL)
    targets.add("hook", receiver.url, project=None, language="en", actor="test")
    job = queue.enqueue(failing_project(tmp_path), actor="test")
    run_worker(app)
    assert not receiver.bodies  # the worker never sends
    schedulers(app)
    wait_for(lambda: receiver.bodies, timeout=30)
    [hook] = receiver.bodies
    assert hook["title"] == f"[StageBackup] 设计稿: job #{job.id} failed"
    assert hook["message"].endswith(f"Open the job: {BASE_URL}/backup/jobs/{job.id}")  # the job's page
    assert wait_for(lambda: db.session.scalar(select(Notification.delivered_at)), timeout=10)
