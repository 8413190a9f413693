"""历史版本 through the test client: every backup holding a file (with its tape label and file number when on
tape, a removed project's too), and restoring the version chosen."""

from __future__ import annotations

import os

from stagebackup import projects
from stagebackup.extensions import db
from stagebackup.models import Archive
from stagebackup.paths import path_token
from stagebackup.tape_models import Tape, TapeFile
from tests.integration.test_restore_jobs import backup, create_project, log_lines, restore_root, run_queued
from tests.integration.web_support import csrf_token


def test_versions_of_a_file_list_every_backup_and_restore_the_chosen_one(app, client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    logo = src / "logo.ai"
    logo.write_bytes(b"first")
    (src / "other.txt").write_text("o")
    project = create_project("版本", [src], tmp_path / "dest")
    first = backup(app, project)
    logo.write_bytes(b"second version")
    os.utime(logo, (1_700_000_000, 1_700_000_000))
    second = backup(app, db.session.merge(project))
    unrelated = create_project("其他", [tmp_path / "src"], tmp_path / "dest2")  # the same file, another project
    third = backup(app, unrelated)
    first_id, second_id, third_id = first.id, second.id, third.id
    # The third backup's archive went to tape: its place is a label and a file number.
    [archive] = db.session.query(Archive).filter_by(job_id=third_id).all()
    tape = Tape(label="LTO001", uuid="u", capacity_bytes=1 << 30)
    db.session.add(tape)
    db.session.flush()
    db.session.add(TapeFile(tape_id=tape.id, file_number=7, kind="archive", archive_id=archive.id, job_id=third_id))
    archive.location_kind = "tape"
    db.session.commit()
    projects.remove("版本", actor="test")  # a removed project's backups stay versions
    db.session.commit()

    member = str(logo).lstrip("/")
    listing = client.get(f"/restore/backups/{first_id}?p={path_token(str(src).lstrip('/'))}").get_data(as_text=True)
    url = f"/restore/versions?path={path_token(member)}&amp;job={first_id}"
    assert url in listing  # 历史版本 from the file's row
    page = client.get(url.replace("&amp;", "&")).get_data(as_text=True)
    rows = [page.index(f'<tr data-job="{n}"') for n in (third_id, second_id, first_id)]
    assert rows == sorted(rows)  # newest first
    assert "磁带 LTO001 文件 7" in page
    sizes = [cell for cell in page.split('<td class="text-end">')[1:4]]
    assert [cell.split("<")[0] for cell in sizes] == ["14 Bytes", "14 Bytes", "5 Bytes"]
    assert f'value="{first_id}" id="version-{first_id}" checked' in page

    token = csrf_token(client, url.replace("&amp;", "&"))
    target = restore_root(app) / "old"
    post = client.post(f"/restore/versions?path={path_token(member)}",
                       data={"csrf_token": token, "job": str(first_id), "target": str(target), "conflict": "skip"})
    assert post.status_code == 302, post.get_data(as_text=True)
    job = run_queued(app, int(post.headers["Location"].rsplit("/", 1)[1]))
    assert job.status == "succeeded", (job.error_message, log_lines(job.id))
    assert (target / member).read_bytes() == b"first"
    assert not (target / str(src / "other.txt").lstrip("/")).exists()

    refused = client.post(f"/restore/versions?path={path_token(member)}",
                          data={"csrf_token": token, "job": "999", "target": str(target)})
    assert refused.status_code == 400
    assert client.get("/restore/versions?path=%%%").status_code == 400
    assert client.get("/restore/versions").status_code == 400
    nothing = client.get(f"/restore/versions?path={path_token('no/such/file')}").get_data(as_text=True)
    assert "没有已完成的备份包含此文件" in nothing


def test_the_versions_query_is_one_range_of_the_path_index(app):
    """The statement as executed, planned by SQLite: a seek into (parent, name, job), never a catalog scan."""
    from sqlalchemy import event

    from stagebackup.restore.versions import versions_of

    executed = []
    listener = lambda conn, cursor, sql, params, context, many: executed.append((sql, params))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        versions_of("srv/projects/客户A/logo.ai")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    [(sql, params)] = [(sql, params) for sql, params in executed if "archive_members" in sql]
    plan = " ".join(str(row) for row in db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
    assert "ix_archive_members_parent_name" in plan and "SCAN archive_members" not in plan, plan
