"""A job's file count counts regular files: the same tree counts the same in tgz, 7z and sync jobs, folders
and links are not files, and an archive split in groups (each repeating its parent folders) never shows
more done than its total."""

from __future__ import annotations

import json
import os

import pytest

from stagebackup.extensions import db
from stagebackup.models import Archive
from tests.integration.test_restore_jobs import backup, create_project, log_lines, restore, restore_root


def _tree(root):
    for folder in ("a/b/c", "d", "cache"):
        (root / folder).mkdir(parents=True)
    for n in range(5):
        (root / "a" / "b" / "c" / f"f{n}.txt").write_bytes(os.urandom(300 * 1024))
        (root / "d" / f"g{n}.txt").write_text("g" * n)
    (root / "cache" / "skipped.tmp").write_text("x")
    (root / "top.txt").write_text("top")
    os.symlink("top.txt", root / "link")
    return 11, 5  # regular files and folders (the source itself too) after the exclusions


@pytest.mark.parametrize("kind", ["tgz", "7z", "sync", "tgz in groups"])
def test_the_same_tree_counts_its_regular_files_the_same_way(app, tmp_path, kind):
    src = tmp_path / "src"
    files, folders = _tree(src)
    options = {"mode": "sync"} if kind == "sync" else {"archive_format": kind.split()[0]}
    if kind == "tgz in groups":
        options["group_max_bytes"] = 1024 * 1024  # the 1.5 MB of files go into two archives
    project = create_project(kind, [src], tmp_path / "dest", excludes=["cache/"], **options)
    job = backup(app, project)
    assert (job.files_done, job.files_total, job.folders_total) == (files, files, folders)
    page = app.test_client().get(f"/backup/jobs/{job.id}").get_data(as_text=True)  # Chinese by default
    assert f"{files} / {files} 个文件, {folders} 个文件夹" in page
    if kind != "sync":  # the scan names what it found, each kind counted on its own
        assert any(f"scan finished: {files} file(s), 5 folder(s), 1 link(s)" in line
                   for line in log_lines(job.id, "INFO")), log_lines(job.id, "INFO")
    if kind == "tgz in groups":
        assert db.session.query(Archive).filter_by(job_id=job.id).count() == 2
    if kind != "sync":
        restored = restore(app, job.id, restore_root(app) / kind.replace(" ", "-"))
        assert restored.status == "succeeded"
        assert (restored.files_done, restored.files_total, restored.folders_total) == (files, files, folders)


def test_a_single_file_restore_says_files_only_and_the_json_has_both_counts(app, tmp_path):
    src = tmp_path / "src"
    _tree(src)
    job = backup(app, create_project("one", [src], tmp_path / "dest"))
    restored = restore(app, job.id, restore_root(app) / "one", paths=[str(src / "top.txt").lstrip("/")])
    assert (restored.files_total, restored.folders_total) == (1, 0)
    client = app.test_client()
    client.set_cookie("lang", "en")
    page = client.get(f"/backup/jobs/{restored.id}").get_data(as_text=True)
    assert "1 / 1 files)" in page and "folders" not in page.split("job-figures")[1].split("</dl>")[0]
    shown = json.loads(app.test_cli_runner().invoke(args=["jobs", "show", str(job.id), "--json"]).output)
    assert (shown["files_total"], shown["folders_total"]) == (12, 6)  # no exclusions: cache/ counts too
