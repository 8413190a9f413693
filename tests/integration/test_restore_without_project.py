"""Backups outlive their project: restore and verify need only the backup's own rows. A removed project's
backups, and a catalog rebuilt from tape into an empty database (the data directory lost), restore byte for
byte from the page and the CLI."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select

from stagebackup import projects
from stagebackup.extensions import db
from stagebackup.models import Archive, Job
from stagebackup.restore import service
from stagebackup.tape import admin
from tests.conftest import build_hostile_tree, make_app
from tests.integration.test_restore_jobs import (
    backup,
    create_project,
    inside,
    log_lines,
    restore,
    restore_root,
    run_queued,
)
from tests.integration.test_tape_backup import tape_project
from tests.treecompare import assert_same_tree

FIFO = {b"a-fifo"}  # the backup skips the FIFO


def utf8_tree(root):
    (root / "客户A" / "empty").mkdir(parents=True)
    (root / "客户A" / "logo v3 ünï.ai").write_bytes(os.urandom(50_000))
    (root / "notes.txt").write_text("notes\n" * 100)
    os.symlink("客户A/logo v3 ünï.ai", root / "link-to-logo")
    os.utime(root / "客户A", (1_500_000_000, 1_500_000_000))
    return root


def test_a_removed_projects_backup_restores_and_verifies(app, tmp_path):
    src = build_hostile_tree(tmp_path / "src")
    job = backup(app, create_project("gone", [src], tmp_path / "dest"))
    projects.remove("gone", actor="test")
    assert db.session.get(Job, job.id).project_id is None

    index = app.test_client().get("/restore").get_data(as_text=True)
    assert 'id="restore-orphans"' in index
    listing = app.test_client().get("/restore?orphans=1").get_data(as_text=True)
    assert f'data-job="{job.id}"' in listing and "gone" in listing
    assert app.test_client().get(f"/restore/backups/{job.id}").status_code == 200

    target = restore_root(app) / "after-removal"
    restored = restore(app, job.id, target)
    assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
    assert restored.project_id is None and restored.project_name == "gone"
    assert_same_tree(src, inside(target, src), ignore=FIFO)
    verify = run_queued(app, service.request_verify(job.id, actor="test").id)
    assert verify.status == "succeeded", (verify.error_message, log_lines(verify.id, "ERROR"))


@pytest.mark.parametrize(("fmt", "password"), [("tgz", None), ("tgz", "tape secret"), ("7z", "tape secret")])
def test_a_catalog_rebuilt_from_tape_restores_byte_for_byte(app, tmp_path, fmt, password):
    admin.label(app.config, "vtape0", "TAPE001")
    # 7z stores names as UTF-16: a name that is not UTF-8 is left out (with an error), so its tree has none.
    src = build_hostile_tree(tmp_path / "src") if fmt == "tgz" else utf8_tree(tmp_path / "src")
    original = backup(app, tape_project("lost", [src], archive_format=fmt, password=password))
    digests = sorted(db.session.scalars(select(Archive.sha256).where(Archive.job_id == original.id)))
    vtape_dir = app.config["VTAPE_DIR"]
    db.session.remove()

    # The data directory is gone: a new server, an empty database, the same tapes.
    rebuilt = make_app(tmp_path / "new-server", VTAPE_DIR=vtape_dir)
    with rebuilt.app_context():
        scanned = rebuilt.test_cli_runner().invoke(args=["tape", "scan", "vtape0"])
        assert scanned.exit_code == 0, scanned.output
        [job] = db.session.scalars(select(Job).where(Job.kind == "backup")).all()
        assert job.project_id is None and job.project_name == "lost"
        assert sorted(db.session.scalars(select(Archive.sha256).where(Archive.job_id == job.id))) == digests
        if password:  # the key stayed with the old server: the password is asked for
            with pytest.raises(service.ValidationError, match="type it"):
                service.request_restore(job.id, target=str(restore_root(rebuilt) / "x"), actor="test")
        target = restore_root(rebuilt) / "from-tape"
        runner = rebuilt.test_cli_runner()
        args = ["restore", "run", str(job.id), "--to", str(target), "--json"]
        result = runner.invoke(args=args + (["--password-stdin"] if password else []),
                               input=f"{password}\n" if password else None)
        assert result.exit_code == 0, result.output
        restored = run_queued(rebuilt, db.session.scalar(select(Job.id).where(Job.kind == "restore")))
        assert restored.status in ("succeeded", "warning"), (restored.error_message,
                                                             log_lines(restored.id, "ERROR"))
        assert restored.drive == "vtape0"
        assert_same_tree(src, inside(target, src), ignore=FIFO)
        page = rebuilt.test_client().get(f"/restore/backups/{job.id}")
        assert page.status_code == 200
        db.session.remove()
