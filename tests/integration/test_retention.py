"""The prune executor on real backups: files gone, members deleted, archives expired, restore no longer offers
them; the guard rails (failed last run, a backup being restored); the dry run; the hook after each backup."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from stagebackup import projects, retention
from stagebackup.errors import ValidationError
from stagebackup.extensions import db
from stagebackup.jobs import queue, workers
from stagebackup.models import FAILED, Archive, ArchiveMember, AuditEvent, Job, Project
from stagebackup.restore import service
from stagebackup.tape_models import TapeFile
from tests.integration.test_restore_jobs import backup, create_project, log_lines, restore_root
from tests.integration.test_tape_backup import errors_of, labelled, run_one, tape_project  # noqa: F401
from tests.integration.test_web_projects import _field_errors, _form
from tests.integration.web_support import csrf_token


@pytest.fixture
def three_backups(app, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(5):
        (src / "sub" / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    project = create_project("留存", [src], tmp_path / "dest")
    jobs = [backup(app, project).id for _ in range(3)]
    return project, jobs


def _archives(job_id):
    return db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()


def _members(job_id):
    return db.session.scalar(select(func.count(ArchiveMember.id)).where(ArchiveMember.job_id == job_id))


def _set_policy(name, **keep):
    spec = projects.spec_of(projects.get_by_name(name))
    for key, value in keep.items():
        setattr(spec, key, value)
    projects.update(name, spec, actor="test")


def _prune(runner, *args):
    result = runner.invoke(args=["retention", "prune", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_dry_run_then_prune_deletes_files_expires_rows_and_restore_stops_offering(app, runner, three_backups):
    project, (old, middle, new) = three_backups
    paths = [a.path for a in _archives(old)]
    assert paths and all(os.path.isfile(p) for p in paths) and _members(old)
    _set_policy("留存", keep_last=2)

    dry = _prune(runner, "--project", "留存", "--dry-run")
    assert dry[0]["pruned"] == [old] and dry[0]["dry_run"]
    reasons = {b["job"]: b["reasons"] for b in dry[0]["backups"]}
    assert reasons[old] == ["past the retention policy"] and "among the last 2" in reasons[new]
    assert all(os.path.isfile(p) for p in paths) and _members(old)  # a dry run deletes nothing
    page = app.test_client().get(f"/backup/projects/{project.id}/edit").get_data(as_text=True)
    assert "保留策略" in page and f'class="retention-prune" data-job="{old}"' in page

    done = _prune(runner, "--project", "留存")
    db.session.expire_all()
    assert done[0]["pruned"] == [old] and done[0]["deleted_files"] == len(paths)
    assert not any(os.path.exists(p) for p in paths)
    assert _members(old) == 0 and all(a.expired_at is not None for a in _archives(old))
    assert _members(new) and all(a.expired_at is None for a in _archives(new))
    listing = app.test_client().get(f"/restore?project={project.id}").get_data(as_text=True)
    assert f'data-job="{old}"' not in listing and f'data-job="{new}"' in listing
    with pytest.raises(ValidationError, match="pruned by its project's retention policy"):
        service.source_backup(old)
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.prune")).one()
    assert event.project == "留存" and event.details["jobs"] == [old]
    assert _prune(runner, "--project", "留存")[0]["pruned"] == []  # nothing more: idempotent


def test_a_failed_last_run_keeps_everything(app, runner, three_backups):
    project, jobs = three_backups
    _set_policy("留存", keep_last=1)
    failed = queue.enqueue(project, actor="test").id
    assert queue.claim(workers.register_worker("h", 1, None)) == failed
    queue.finish(failed, FAILED, error_class="X", message="disk on fire")
    plan = _prune(runner, "--project", "留存")[0]
    assert plan["pruned"] == [] and all(b["keep"] for b in plan["backups"])
    assert {tuple(b["reasons"]) for b in plan["backups"]} == {("the project's last run failed: nothing is pruned",)}
    assert all(a.expired_at is None and os.path.isfile(a.path) for job in jobs for a in _archives(job))


def test_a_backup_being_restored_is_kept(app, runner, three_backups):
    _project, (old, middle, new) = three_backups
    _set_policy("留存", keep_last=1)
    service.request_restore(old, target=str(restore_root(app) / "r"), actor="test")  # queued: active
    plan = _prune(runner, "--project", "留存")[0]
    assert plan["pruned"] == [middle]
    assert {b["job"]: b["reasons"] for b in plan["backups"]}[old] == ["a restore or verify is reading it"]
    assert all(os.path.isfile(a.path) for a in _archives(old))


def test_each_successful_backup_prunes_and_a_prune_error_never_fails_it(app, three_backups, monkeypatch):
    project, (old, middle, new) = three_backups
    _set_policy("留存", keep_last=2)
    fourth = backup(app, project)
    db.session.expire_all()
    assert all(a.expired_at is not None for job in (old, middle) for a in _archives(job))
    assert any("retention: pruned backup(s)" in line for line in log_lines(fourth.id, "INFO"))

    def broken(*args, **kwargs):
        raise OSError("the destination went read-only")

    monkeypatch.setattr(retention, "prune_project", broken)
    fifth = backup(app, project)  # asserts it succeeded
    assert any("retention: the prune failed" in line for line in log_lines(fifth.id, "INFO"))
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "retention.error")) == 1
    assert db.session.get(Job, fifth.id).status == "succeeded"


def test_sync_projects_refuse_retention(app, tmp_path, runner):
    (tmp_path / "s").mkdir()
    with pytest.raises(ValidationError, match="sync mirror has no backups"):
        create_project("镜像", [tmp_path / "s"], tmp_path / "m", mode="sync", keep_daily=7)
    result = runner.invoke(args=["projects", "add", "m2", "--mode", "sync", "--source", str(tmp_path / "s"),
                                 "--dest-dir", str(tmp_path / "m2"), "--keep-last", "3"])
    assert result.exit_code == 2 and "retention needs archive mode" in result.output
    result = runner.invoke(args=["projects", "add", "a2", "--source", str(tmp_path / "s"),
                                 "--dest-dir", str(tmp_path / "a2"), "--keep-last", "3", "--keep-monthly", "6",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["retention"] == {"keep_last": 3, "keep_monthly": 6}
    result = runner.invoke(args=["projects", "edit", "a2", "--keep-last", "0", "--json"])
    assert json.loads(result.output)["retention"] == {"keep_monthly": 6}


@pytest.mark.usefixtures("labelled")
def test_tape_archives_are_only_marked_expired(app, tmp_path):
    src = tmp_path / "tsrc"
    src.mkdir()
    (src / "a.txt").write_text("tape data\n" * 1000)
    project = tape_project("磁带留存", [src], keep_last=1)
    first, second = run_one(app, project), run_one(app, project)
    assert (first.status, second.status) == ("succeeded", "succeeded"), errors_of(first.id) + errors_of(second.id)
    db.session.expire_all()
    archives = _archives(first.id)
    assert archives and all(a.location_kind == "tape" and a.expired_at is not None for a in archives)
    assert _members(first.id)  # the catalog rows stay as history; the tape pools recycle the media
    pieces = db.session.scalars(select(TapeFile).where(TapeFile.archive_id.in_([a.id for a in archives]))).all()
    assert pieces and not any(piece.void for piece in pieces)
    assert all(a.expired_at is None for a in _archives(second.id))
    listing = app.test_client().get(f"/restore?project={project.id}").get_data(as_text=True)
    assert f'data-job="{first.id}"' not in listing and f'data-job="{second.id}"' in listing


def test_the_form_saves_the_policy_and_places_its_errors(app, client, tmp_path):
    token = csrf_token(client)
    response = client.post("/backup/projects/new", data={**_form(tmp_path, keep_last="3", keep_monthly="12"),
                                                         "csrf_token": token})
    assert response.status_code == 302
    project = db.session.scalar(select(Project))
    assert (project.keep_last, project.keep_monthly, project.keep_daily) == (3, 12, None)
    html = client.get(f"/backup/projects/{project.id}/edit").get_data(as_text=True)
    assert 'name="keep_last" type="number" value="3"' in html and "还没有可保留或删除的备份" in html
    response = client.post("/backup/projects/new", data={
        **_form(tmp_path, name="镜像", mode="sync", dest_dir=str(tmp_path / "m"), keep_daily="7"),
        "csrf_token": token})  # the hidden retention fields of a sync project are not applied
    assert response.status_code == 302
    assert projects.get_by_name("镜像").keep_daily is None
    response = client.post(f"/backup/projects/{project.id}/edit", data={
        **_form(tmp_path, keep_last="-1"), "csrf_token": token})
    assert response.status_code == 422
    assert "保留数量必须在 0（不使用）到 100000 之间" in _field_errors(response.get_data(as_text=True), "keep_last")
