"""No empty or half-read backup is called good: a source root replaced or removed during the scan fails the job;
errors on more than STAGEBACKUP_ERROR_FAIL_RATIO of the files fail it; a tape that cannot take the backup is
refused before anything is compressed."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.jobs.runner import outcome
from stagebackup.jobs.summary import job_detail
from stagebackup.models import Archive, JobStage
from stagebackup.pipeline import scan, source
from stagebackup.tape import admin
from tests.integration.test_backup_job import create_project, run_one
from tests.integration.test_tape_backup import tape_project


def tree(root, files=10):
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        (root / "sub" / f"f{i:02d}.txt").write_bytes(b"x" * 1000)
    return root


@pytest.mark.parametrize("what", ["renamed", "removed"])
def test_a_source_root_replaced_during_the_scan_fails_the_job(app, tmp_path, monkeypatch, what):
    src = tree(tmp_path / "src")
    real_scandir = os.scandir
    calls = []

    def scandir(path):
        calls.append(path)
        if len(calls) == 2:  # the walk is inside the root: the root goes away under it
            os.rename(src, tmp_path / "moved")
            if what == "renamed":
                src.mkdir()  # another, empty directory under the same name
        return real_scandir(path)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    job = run_one(app, create_project("moving", [src], tmp_path / "dest"))
    assert job.status == "failed", (job.status, job.error_message)
    assert job.error_class == "SourceChanged"
    assert ("replaced" if what == "renamed" else "disappeared") in job.error_message
    assert db.session.scalars(select(Archive).where(Archive.job_id == job.id)).all() == []
    assert not (tmp_path / "dest").exists() or os.listdir(tmp_path / "dest") == []
    steps = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert steps["scan"] == "failed"


def test_errors_on_too_many_files_fail_the_job_and_a_few_make_it_a_warning(app, tmp_path, monkeypatch):
    src = tree(tmp_path / "src", files=20)
    real_open = source.open_regular
    unreadable = {b"f00.txt", b"f01.txt", b"f02.txt"}  # 3 of 20 files: 15 %

    def open_regular(files, path):
        if os.path.basename(path) in unreadable:
            raise PermissionError(13, "Permission denied", path)
        return real_open(files, path)

    monkeypatch.setattr(source, "open_regular", open_regular)
    job = run_one(app, create_project("many", [src], tmp_path / "dest"))
    assert job.status == "failed" and job.error_class == "TooManyErrors", (job.status, job.error_message)
    assert "3 error(s)" in job.error_message and "10%" in job.error_message
    page = app.test_client().get(f"/backup/jobs/{job.id}").get_data(as_text=True)
    assert "超过 10%" in page  # the card says it in the page's language

    unreadable.clear()
    unreadable.add(b"f00.txt")  # 1 of 20: 5 %
    job = run_one(app, create_project("few", [src], tmp_path / "dest2"))
    assert job.status == "warning", (job.status, job.error_message)


@pytest.mark.parametrize(("errors", "files", "status"), [
    (0, 0, "succeeded"), (0, 10, "succeeded"), (1, 10, "warning"), (2, 10, "failed"), (1, 0, "failed"),
    (10, 100, "warning"), (11, 100, "failed"),
])
def test_outcome(errors, files, status):
    assert outcome(errors, files, 0.10)[0] == status


def test_a_write_protected_tape_is_refused_before_anything_is_compressed(app, tmp_path):
    admin.label(app.config, "vtape0", "TAPE001")
    admin.load(app.config, "vtape0", "TAPE001", write_protected=True)
    job = run_one(app, tape_project("wp", [tree(tmp_path / "src")]))
    assert job.status == "failed" and "write-protected" in job.error_message
    started = set(db.session.scalars(select(JobStage.code).where(JobStage.job_id == job.id,
                                                                 JobStage.started_at.is_not(None))))
    assert started == {"scan", "copy"}  # never compressed
    steps = {s["code"]: s["state"] for s in job_detail(job)["stage_steps"]}
    assert steps["copy"] == "failed" and steps["compress"] == "pending"
