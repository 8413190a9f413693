"""A restore never creates privilege: set-uid/set-gid bits come back only with their owners (as root)."""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from stagebackup.restore import service
from tests.integration.test_restore_jobs import backup, create_project, inside, log_lines, restore, restore_root

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="giving files away needs root")
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def setuid_tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name, mode in (("tool", 0o4755), ("groupish", 0o2750), ("plain", 0o644)):
        (src / name).write_bytes(b"#!/bin/sh\n")
        os.chown(src / name, NOBODY.pw_uid, NOBODY.pw_gid)
        os.chmod(src / name, mode)
    return src


def owner_and_mode(path):
    st = os.lstat(path)
    return st.st_uid, stat.S_IMODE(st.st_mode)


@pytest.mark.parametrize("fmt", ["tgz", "7z"])
def test_without_owners_the_bits_are_cleared_with_an_info_line(app, tmp_path, setuid_tree, fmt):
    job = backup(app, create_project(fmt, [setuid_tree], tmp_path / "dest", archive_format=fmt))
    restored = restore(app, job.id, restore_root(app) / "plain")
    assert restored.status == "succeeded", restored.error_message
    where = inside(restore_root(app) / "plain", setuid_tree)
    assert owner_and_mode(where / "tool") == (0, 0o755)
    assert owner_and_mode(where / "groupish") == (0, 0o750)
    assert owner_and_mode(where / "plain") == (0, 0o644)
    info = log_lines(restored.id, "INFO")
    assert sum("set-uid/set-gid bits cleared" in line for line in info) == 2
    assert any("cleared the set-uid/set-gid bits of 2 file(s)" in line for line in info)


def test_with_owners_as_root_the_owner_and_the_bits_come_back(app, tmp_path, setuid_tree):
    job = backup(app, create_project("owners", [setuid_tree], tmp_path / "dest"))
    restored = restore(app, job.id, restore_root(app) / "owned", restore_owners=True)
    assert restored.status == "succeeded", restored.error_message
    where = inside(restore_root(app) / "owned", setuid_tree)
    assert owner_and_mode(where / "tool") == (NOBODY.pw_uid, 0o4755)
    assert os.lstat(where / "groupish").st_gid == NOBODY.pw_gid and owner_and_mode(where / "groupish")[1] == 0o2750
    assert any("owners are restored" in line for line in log_lines(restored.id, "INFO"))


def test_7z_records_no_owner_so_the_bits_are_cleared_even_with_owners(app, tmp_path, setuid_tree):
    job = backup(app, create_project("seven", [setuid_tree], tmp_path / "dest", archive_format="7z"))
    restored = restore(app, job.id, restore_root(app) / "seven", restore_owners=True)
    assert restored.status == "succeeded", restored.error_message
    assert owner_and_mode(inside(restore_root(app) / "seven", setuid_tree) / "tool") == (0, 0o755)


def test_a_mirror_restores_owners_from_the_mirror_itself(app, tmp_path, setuid_tree):
    from tests.integration.test_sync import run_sync, sync_project

    project_id = sync_project("mirror", [setuid_tree], tmp_path / "mirror")
    job = run_sync(app, project_id)
    assert job.status == "succeeded"
    plain = restore(app, job.id, restore_root(app) / "m-plain")
    assert owner_and_mode(restore_root(app) / "m-plain" / "src" / "tool") == (0, 0o755)
    owned = restore(app, job.id, restore_root(app) / "m-owned", restore_owners=True)
    assert plain.status == owned.status == "succeeded"
    assert owner_and_mode(restore_root(app) / "m-owned" / "src" / "tool") == (NOBODY.pw_uid, 0o4755)


def test_the_option_is_recorded_on_the_job_and_offered_by_cli_and_form(app, runner, client, tmp_path, setuid_tree):
    job = backup(app, create_project("cli", [setuid_tree], tmp_path / "dest"))
    queued = service.request_restore(job.id, target=str(restore_root(app) / "x"))
    assert queued.params["restore_owners"] is False
    result = runner.invoke(args=["restore", "run", str(job.id), "--to", str(restore_root(app) / "y"), "--owners",
                                 "--json"])
    assert result.exit_code == 0, result.output
    from stagebackup.extensions import db
    from stagebackup.models import Job

    assert db.session.query(Job).order_by(Job.id.desc()).first().params["restore_owners"] is True
    assert 'name="restore_owners"' in client.get(f"/restore/backups/{job.id}").get_data(as_text=True)
