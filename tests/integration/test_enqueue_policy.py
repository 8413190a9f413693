"""The queue's policy in one place: every caller's job gets the configured attempts, and the job, its first
log line and its audit row are one transaction."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.jobs.worker import Worker
from stagebackup.models import AuditEvent, Job, JobLog
from stagebackup.restore import service

from .web_support import csrf_token, make_project


def _audit(job_id: int) -> list[AuditEvent]:
    return db.session.query(AuditEvent).filter(AuditEvent.target == f"job:{job_id}").all()


def test_web_cli_restore_and_verify_jobs_get_the_configured_attempts(app, client, runner, tmp_path):
    app.config["JOB_MAX_ATTEMPTS"] = 5
    source = make_project(tmp_path, "source")
    (tmp_path / "src-0" / "a.txt").write_text("hello")
    backup_id = queue.enqueue(source, actor="test").id
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0

    web = make_project(tmp_path, "web")
    client.post(f"/backup/projects/{web.id}/run", data={"csrf_token": csrf_token(client)})
    make_project(tmp_path, "cli")
    cli_id = json.loads(runner.invoke(args=["jobs", "run", "cli", "--json"]).output)["id"]
    restore_id = service.request_restore(backup_id, target=app.config["RESTORE_ROOTS"][0] + "/r", actor="web:x").id
    verify_id = service.request_verify(backup_id, actor="web:x").id
    typed_id = service.request_verify(backup_id, password="typed once", actor="web:x").id
    db.session.expire_all()

    web_id = db.session.query(Job.id).filter(Job.project_name == "web").scalar()
    attempts = {job_id: db.session.get(Job, job_id).max_attempts
                for job_id in (backup_id, web_id, cli_id, restore_id, verify_id, typed_id)}
    # A typed password is deleted when its attempt ends: that job runs once.
    assert attempts == {backup_id: 5, web_id: 5, cli_id: 5, restore_id: 5, verify_id: 5, typed_id: 1}
    actions = {job_id: [(e.actor.split(":")[0], e.action) for e in _audit(job_id)]
               for job_id in (web_id, cli_id, restore_id, verify_id)}
    assert actions == {web_id: [("web", "job.run")], cli_id: [("cli", "job.run")],
                       restore_id: [("web", "restore.run")], verify_id: [("web", "restore.verify")]}
    assert _audit(restore_id)[0].details["project"] == "source"


def test_a_failed_audit_insert_leaves_no_job(app, tmp_path):
    project = make_project(tmp_path, "p")
    # The database refuses the audit row, as a full disk or a lost link would.
    db.session.execute(text("CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                            "BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"))
    db.session.commit()
    with pytest.raises(Exception, match="audit log unavailable"):
        queue.enqueue(project, actor="cli:test", remark="首次全量")
    assert db.session.query(Job).count() == 0 and db.session.query(JobLog).count() == 0
    db.session.execute(text("DROP TRIGGER audit_down"))
    db.session.commit()
    job = queue.enqueue(project, actor="cli:test")  # the session is usable again: nothing half-done
    assert [e.actor for e in _audit(job.id)] == ["cli:test"]
