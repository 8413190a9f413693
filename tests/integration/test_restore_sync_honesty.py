"""A mirror holds one state: restoring an older sync job restores only the files that still match its catalog
and names the others ``[SKIP] changed since job N``; the job ends ``warning``."""

from __future__ import annotations

import os
import re

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Job
from tests.integration.test_restore_jobs import log_lines, restore_root, run_queued
from tests.integration.web_support import csrf_token


def sync_run(app, project) -> Job:
    job = run_queued(app, queue.enqueue(project, actor="test").id)
    assert job.status == "succeeded", (job.error_message, log_lines(job.id, "ERROR"))
    return job


def test_an_older_sync_job_restores_only_unchanged_files(app, client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "same.txt").write_text("kept")
    (src / "edited.txt").write_text("first")
    (src / "touched.txt").write_text("touch")
    spec = project_checks.ProjectSpec(name="镜像", sources=[str(src)], dest_dir=str(tmp_path / "mirror"), mode="sync")
    project = projects.create(spec, actor="test")
    first = sync_run(app, project)
    (src / "edited.txt").write_text("second, longer")
    os.utime(src / "touched.txt", (1_500_000_000, 1_500_000_000))  # same size, another mtime
    second = sync_run(app, db.session.merge(project))
    first_id, second_id, project_id = first.id, second.id, project.id

    page = client.get(f"/restore?project={project_id}").get_data(as_text=True)
    newest, older = (page.index(f'data-job="{n}"') for n in (second_id, first_id))
    assert "sync-current" in page[newest:older] and "sync-older" in page[older:]

    token = csrf_token(client, f"/restore/backups/{first_id}")
    target = restore_root(app) / "older"
    response = client.post(f"/restore/backups/{first_id}", data={"target": str(target), "conflict": "skip",
                                                                     "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    restore_id = int(response.headers["Location"].rsplit("/", 1)[1])
    job = run_queued(app, restore_id)
    assert job.status == "warning", (job.error_message, log_lines(job.id))
    assert (target / "src" / "same.txt").read_text() == "kept"
    assert not (target / "src" / "edited.txt").exists() and not (target / "src" / "touched.txt").exists()
    skipped = log_lines(restore_id, "SKIP")
    assert sorted(skipped) == [f"src/edited.txt: changed since job {first_id}",
                               f"src/touched.txt: changed since job {first_id}"]
    card = client.get(f"/backup/jobs/{restore_id}").get_data(as_text=True)
    assert 'data-status="warning"' in card
    assert re.search(rf"2 file\(s\) changed in the mirror since job {first_id}|自任务 {first_id}", card), card

    current = restore_root(app) / "current"
    response = client.post(f"/restore/backups/{second_id}", data={"target": str(current), "csrf_token": token})
    job = run_queued(app, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert job.status == "succeeded", (job.error_message, log_lines(job.id))
    assert (current / "src" / "edited.txt").read_text() == "second, longer"
