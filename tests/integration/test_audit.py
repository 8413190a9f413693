"""The audit log: what is recorded, the /audit page's filters and pages, and `flask audit list`."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import delete, insert, select, text

from stagebackup import projects
from stagebackup.dbtypes import utcnow
from stagebackup.extensions import db
from stagebackup.models import AuditEvent, Job, JobLog, JobStage
from stagebackup.schema import upgrade_to_head
from tests.conftest import make_app

from .test_web_projects import _form
from .web_support import csrf_token, make_project

ROW = re.compile(r'<tr data-event="(\d+)">')


def _events(action: str) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_project_changes_name_each_setting_old_and_new_and_never_a_password(client, tmp_path):
    token = csrf_token(client)
    client.post("/backup/projects/new", data={**_form(tmp_path, password="s3cret-pw"), "csrf_token": token})
    project_id = projects.get_by_name("设计稿").id
    client.post(f"/backup/projects/{project_id}/edit", data={
        **_form(tmp_path, level="9", excludes="*.bak\n", password="n3w-pw", encrypted="y"), "csrf_token": token})
    (created,), (changed,) = _events("project.create"), _events("project.update")
    assert created.project == "设计稿" and created.actor.startswith("web:")
    assert changed.details["changes"] == {"level": [6, 9], "excludes": [["*.tmp", "cache/"], ["*.bak"]],
                                          "password": "changed"}
    client.post(f"/backup/projects/{project_id}/delete", data={"csrf_token": token})
    assert _events("project.remove")[0].project == "设计稿"
    every_row = json.dumps([(e.details, e.remark) for e in db.session.scalars(select(AuditEvent))])
    assert "s3cret-pw" not in every_row and "n3w-pw" not in every_row
    page = client.get("/audit?project=设计稿").get_data(as_text=True)
    assert len(ROW.findall(page)) == 3
    assert "<code>level</code>: 6 → 9" in page and "s3cret" not in page


def test_a_manual_run_keeps_its_remark_after_the_job_rows_are_pruned(client, runner, tmp_path):
    make_project(tmp_path, "设计稿")
    run = runner.invoke(args=["jobs", "run", "设计稿", "--remark", "客户要求的紧急备份", "--json"])
    job_id = json.loads(run.output)["id"]
    assert runner.invoke(args=["jobs", "cancel", str(job_id)]).exit_code == 0
    for table in (JobLog, JobStage):
        db.session.execute(delete(table).where(table.job_id == job_id))
    db.session.execute(delete(Job).where(Job.id == job_id))
    db.session.commit()
    page = client.get("/audit?project=设计稿&action=job").get_data(as_text=True)
    assert "客户要求的紧急备份" in page
    command = ["audit", "list", "--project", "设计稿", "--action", "job", "--json"]
    listed = json.loads(runner.invoke(args=command).output)
    assert [(e["action"], e["remark"]) for e in listed["events"]] == [
        ("job.cancel", None), ("job.run", "客户要求的紧急备份")]


def _many_events(count: int, hours_ago: int = 0) -> None:
    at = utcnow() - timedelta(hours=hours_ago)
    db.session.execute(insert(AuditEvent), [
        {"at": at, "actor": "test", "action": "tape.label" if i % 2 else "project.update",
         "project": None if i % 2 else f"p{i % 3}", "target": f"t{i}"} for i in range(count)])
    db.session.commit()


def test_pages_of_fifty_newest_first_without_gaps_or_repeats(client):
    _many_events(120)
    seen, url, pages = [], "/audit", 0
    while url:
        html = client.get(url).get_data(as_text=True)
        ids = [int(i) for i in ROW.findall(html)]
        seen += ids
        pages += 1
        older = re.search(r'id="audit-older" href="([^"]+)"', html)
        url = older.group(1).replace("&amp;", "&") if older else None
    assert pages == 3 and len(seen) == 120 and seen == sorted(set(seen), reverse=True)


def test_filters_by_action_project_and_time(client, runner):
    _many_events(6, hours_ago=48)
    _many_events(6)
    def ids(query):
        return ROW.findall(client.get("/audit?" + query).get_data(as_text=True))
    assert len(ids("action=tape.label")) == 6
    assert len(ids("action=project")) == 6 and len(ids("action=project.update")) == 6
    assert len(ids("action=tape")) == 6 and len(ids("action=proj")) == 0
    assert len(ids("project=p0")) == 2
    assert len(ids("since=1d")) == 6 and len(ids("since=3d")) == 12
    assert len(ids("since=" + (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M") + "Z")) == 6
    assert len(ids("since=1d&action=project")) == 3
    listed = runner.invoke(args=["audit", "list", "--since", "1d", "--action", "project", "--json", "--limit", "2"])
    document = json.loads(listed.output)
    assert len(document["events"]) == 2 and document["next_before"] == document["events"][-1]["id"]


def test_bad_filter_values_are_a_400_with_a_message_on_the_form(client, runner):
    client.set_cookie("lang", "en")
    for query, field, message in [
        ("since=yesterday", "since", "is not a time"),
        ("since=99999999999d", "since", "is not a time"),
        ("since=999999w", "since", "is not a time"),
        ("action=DROP%20TABLE", "action", "is not an action"),
        ("before=-1", "before", "is not a page position"),
        ("before=99999999999999999999999", "before", "is not a page position"),
        ("project=" + "x" * 300, "project", "the project name is not valid"),
    ]:
        response = client.get("/audit?" + query)
        assert response.status_code == 400, query
        html = response.get_data(as_text=True)
        assert 'id="audit-filter-error"' in html and message in html and ROW.findall(html) == []
        if field != "before":
            assert re.search(rf'id="audit-{field}"', html) and "is-invalid" in html
    bad = runner.invoke(args=["audit", "list", "--since", "yesterday"])
    assert bad.exit_code != 0 and "is not a time" in bad.output
    assert runner.invoke(args=["audit", "list", "--limit", "0"]).exit_code != 0


def test_key_rotation_is_audited(app, runner):
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    (event,) = _events("keys.rotate")
    assert event.actor.startswith("cli") and event.details["secrets"] == 0


def test_the_migration_names_the_project_of_existing_rows(tmp_path):
    app = make_app(tmp_path, SCHEMA_AUTO_UPGRADE=False)
    upgrade_to_head(app, revision="0008")
    with app.app_context():
        with db.engine.begin() as conn:
            for action, target, details in [("project.update", "设计稿", None),
                                            ("job.run", "job:7", '{"project": "财务"}'),
                                            ("schedule.skipped", "财务", '{"job_id": 3}'),
                                            ("tape.label", "L0001", '{"drive": "vtape0"}')]:
                conn.execute(text("INSERT INTO audit_events (at, actor, action, target, details) VALUES "
                                  "('2026-01-01 00:00:00', 'cli', :action, :target, :details)"),
                             {"action": action, "target": target, "details": details})
    upgrade_to_head(app)
    with app.app_context():
        rows = db.session.execute(text("SELECT action, project FROM audit_events ORDER BY id")).all()
        assert rows == [("project.update", "设计稿"), ("job.run", "财务"), ("schedule.skipped", "财务"),
                        ("tape.label", None)]
        db.session.remove()
        db.engine.dispose()
