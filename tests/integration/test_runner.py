"""The runner's kind → task table, and a failed job's error on its card in the page's language."""

from __future__ import annotations

import shutil

from flask_babel import refresh

from stagebackup.extensions import db
from stagebackup.jobs import queue, runner
from stagebackup.jobs.backup_task import run_backup
from stagebackup.jobs.sync_task import run_sync
from stagebackup.jobs.worker import Worker
from stagebackup.models import Job, Project
from stagebackup.restore.tasks import run_restore, run_verify

from .web_support import make_project


def run_queued(app, job_id: int) -> Job:
    db.session.rollback()
    assert Worker(app, burst=True).run() == 0
    db.session.expire_all()
    return db.session.get(Job, job_id)


def test_each_kind_has_its_task(app, tmp_path):
    assert runner.TASKS == {"backup": run_backup, "sync": run_sync, "restore": run_restore, "verify": run_verify}
    archive = make_project(tmp_path, "archive")
    mirror = make_project(tmp_path, "mirror", mode="sync")
    assert runner.task_kind(queue.enqueue(archive, actor="test"), archive) == "backup"
    assert runner.task_kind(queue.enqueue(mirror, actor="test"), mirror) == "sync"


def test_an_unknown_kind_ends_failed_with_its_reason(app, tmp_path):
    job_id = queue.enqueue(make_project(tmp_path, "p"), actor="test", kind="archaeology").id
    job = run_queued(app, job_id)
    assert (job.status, job.error_class) == ("failed", "UnknownJobKind")
    assert job.error_message == ("no task runs jobs of kind 'archaeology' "
                                 "(known kinds: backup, restore, sync, verify)")


def _fail_with_removed_project(app, tmp_path) -> int:
    project = make_project(tmp_path, "设计稿")
    job_id = queue.enqueue(project, actor="test").id
    db.session.get(Job, job_id).project_id = None  # removed behind the queue's back
    db.session.delete(db.session.get(Project, project.id))
    db.session.commit()
    return job_id


def test_a_removed_project_ends_its_backup_failed(app, tmp_path):
    job = run_queued(app, _fail_with_removed_project(app, tmp_path))
    assert (job.status, job.error_class, job.error_message) == ("failed", "ProjectRemoved",
                                                                "project 设计稿 was removed")
    assert job.error_values == {"name": "设计稿"}


def test_the_card_shows_a_failed_jobs_error_in_the_pages_language(app, client, tmp_path):
    removed = run_queued(app, _fail_with_removed_project(app, tmp_path)).id
    project = make_project(tmp_path, "gone-source")
    shutil.rmtree(project.sources[0])
    missing = run_queued(app, queue.enqueue(project, actor="test").id)
    assert missing.status == "failed" and missing.error_template, missing.error_message

    chinese = client.get(f"/backup/jobs/{removed}/card").get_data(as_text=True)
    assert "项目 设计稿 已被删除" in chinese and "was removed" not in chinese
    assert "不存在或不可读" in client.get(f"/backup/jobs/{missing.id}/card").get_data(as_text=True)
    client.set_cookie("lang", "en")
    refresh()  # the test's app context (shared with its requests) caches the locale
    english = client.get(f"/backup/jobs/{removed}/card").get_data(as_text=True)
    assert "project 设计稿 was removed" in english
