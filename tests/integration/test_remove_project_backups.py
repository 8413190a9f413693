"""Removing a project asks what to do with its backups: keep them (the default: still restorable and
verifiable) or delete them as well (directory archives removed, tape files marked expired so their tapes
can be recycled). From the page and the CLI."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import func, select

from stagebackup import projects
from stagebackup.errors import ConflictError
from stagebackup.extensions import db
from stagebackup.models import Archive, ArchiveMember, AuditEvent, Job, Project
from stagebackup.restore import service
from stagebackup.tape import admin, recycle
from stagebackup.tape_models import TapeFile
from tests.integration.test_restore_jobs import backup, create_project
from tests.integration.test_tape_backup import tape_project

from .web_support import csrf_token


def _archives(job_id):
    return db.session.scalars(select(Archive).where(Archive.job_id == job_id)).all()


def _removal_audit(name):
    return db.session.scalar(select(AuditEvent).where(AuditEvent.action == "project.remove",
                                                      AuditEvent.target == name)).details


def _delete_on_page(client, project_id, **choice):
    token = csrf_token(client, f"/backup/projects/{project_id}/edit")
    return client.post(f"/backup/projects/{project_id}/delete", data={"csrf_token": token, **choice},
                       follow_redirects=True)


def test_the_page_keeps_the_backups_by_default(app, client, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    job = backup(app, create_project("kept", [tmp_path / "src"], tmp_path / "dest"))
    form = client.get(f"/backup/projects/{job.project_id}/edit").get_data(as_text=True)
    assert 'value="keep" id="backups-keep" checked' in form and 'value="delete" id="backups-delete"' in form
    done = _delete_on_page(client, job.project_id)
    assert "它的备份和任务历史保留" in done.get_data(as_text=True)
    db.session.expire_all()
    [archive] = _archives(job.id)
    assert archive.expired_at is None and os.path.exists(archive.path)
    assert _removal_audit("kept") == {"backups": "kept"}
    assert app.test_client().get(f"/restore/backups/{job.id}").status_code == 200


def test_the_page_deletes_directory_backups_when_asked(app, client, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n" * 1000)
    job = backup(app, create_project("gone", [tmp_path / "src"], tmp_path / "dest"))
    [archive] = _archives(job.id)
    path, size = archive.path, archive.size
    done = _delete_on_page(client, job.project_id, backups="delete")
    assert "已删除项目 gone 及其备份" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(Project).where(Project.name == "gone")) is None
    [archive] = _archives(job.id)
    assert archive.expired_at is not None and not os.path.exists(path)
    assert db.session.scalar(select(func.count(ArchiveMember.id)).where(ArchiveMember.archive_id == archive.id)) == 0
    assert db.session.get(Job, job.id).project_name == "gone"  # the history stays
    assert _removal_audit("gone") == {"backups": "deleted", "archives": 1, "deleted_files": 1, "freed_bytes": size}


def test_the_cli_deletes_tape_backups_by_expiring_their_tape_files(app, runner, tmp_path):
    admin.label(app.config, "vtape0", "TAPE001")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n" * 1000)
    job = backup(app, tape_project("ontape", [tmp_path / "src"]))
    assert recycle.expirable() == []
    result = runner.invoke(args=["projects", "remove", "ontape", "--delete-backups"])
    assert result.exit_code == 0 and "removed with its backups" in result.output
    db.session.expire_all()
    [archive] = _archives(job.id)
    assert archive.expired_at is not None
    files = db.session.scalars(select(TapeFile).where(TapeFile.archive_id == archive.id)).all()
    assert files and all(f.expired_at is not None and not f.void for f in files)  # history, marked expired
    recycled = runner.invoke(args=["tape", "recycle", "--dry-run", "--json"])
    assert json.loads(recycled.output)["newly_expired"] == ["TAPE001"]


def test_the_cli_keeps_backups_by_default_and_refuses_to_delete_what_a_verify_reads(app, runner, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    job = backup(app, create_project("busy", [tmp_path / "src"], tmp_path / "dest"))
    service.request_verify(job.id, actor="test")
    db.session.commit()
    with pytest.raises(ConflictError):
        projects.remove("busy", actor="test", delete_backups=True)
    db.session.rollback()
    [archive] = _archives(job.id)
    assert archive.expired_at is None and os.path.exists(archive.path)
    assert db.session.scalar(select(Project).where(Project.name == "busy")) is not None
