"""A mirror that would delete more than the allowed share is confirmed run by run, never by a project flag."""

from __future__ import annotations

import os

from stagebackup.extensions import db
from stagebackup.jobs.worker import Worker
from stagebackup.models import AuditEvent, Job
from tests.integration.test_sync import mirror_ten_then_remove_seven, run_sync

from .web_support import csrf_token


def test_the_refused_job_offers_a_confirmation_that_runs_once(app, client, tmp_path):
    _src, project_id = mirror_ten_then_remove_seven(app, "mirror", tmp_path)
    refused = run_sync(app, project_id)
    assert refused.error_class == "MassDeleteRefused" and "confirm" in refused.error_message
    card = client.get(f"/backup/jobs/{refused.id}/card").get_data(as_text=True)
    assert f"/backup/jobs/{refused.id}/confirm-mass-delete" in card

    response = client.post(f"/backup/jobs/{refused.id}/confirm-mass-delete",
                           headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client)})
    assert response.status_code == 204 and response.headers["HX-Redirect"]
    confirmed = db.session.query(Job).order_by(Job.id.desc()).first()
    assert confirmed.params == {"allow_mass_delete": True}
    event = db.session.query(AuditEvent).filter_by(target=f"job:{confirmed.id}").one()
    assert event.details["allow_mass_delete"] is True and event.details["confirms_job"] == refused.id
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    assert db.session.get(Job, confirmed.id).status == "succeeded"
    assert len(os.listdir(tmp_path / "dest" / "src")) == 3

    # The confirmation was for that run only.
    for i in range(5):  # 5 of 8 files only in the mirror
        (tmp_path / "dest" / "src" / f"extra{i}.txt").write_text("x")
    assert run_sync(app, project_id).error_class == "MassDeleteRefused"


def test_only_a_refused_mass_delete_can_be_confirmed(app, client, tmp_path):
    _src, project_id = mirror_ten_then_remove_seven(app, "mirror", tmp_path)
    succeeded = db.session.query(Job).filter_by(project_id=project_id).one()
    token = csrf_token(client)
    assert client.post(f"/backup/jobs/{succeeded.id}/confirm-mass-delete",
                       headers={"X-CSRFToken": token}).status_code == 404
    assert client.post("/backup/jobs/999999/confirm-mass-delete", headers={"X-CSRFToken": token}).status_code == 404


def test_the_cli_confirms_a_mass_delete_for_one_run(app, runner, tmp_path):
    _src, project_id = mirror_ten_then_remove_seven(app, "mirror", tmp_path)
    assert run_sync(app, project_id).error_class == "MassDeleteRefused"
    result = runner.invoke(args=["jobs", "run", "mirror", "--allow-mass-delete"])
    assert result.exit_code == 0, result.output
    job = db.session.get(Job, int(result.output))
    assert job.params == {"allow_mass_delete": True}
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    assert db.session.get(Job, job.id).status == "succeeded"
