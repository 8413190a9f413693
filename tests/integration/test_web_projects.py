"""Project forms: server-side validation shown next to the fields, write-only passwords, delete."""

import os
import re

from stagebackup import keys
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import AuditEvent, Job, Project

from .web_support import csrf_token, make_project


def _form(tmp_path, **overrides):
    src = tmp_path / "srv"
    src.mkdir(exist_ok=True)
    data = {
        "name": "设计稿", "sources": f"{src}\n", "includes": "", "excludes": "*.tmp\ncache/\n",
        "mode": "archive", "archive_format": "tgz", "level": "6", "password": "", "group_max_mib": "",
        "sync_strategy": "overwrite", "dest_kind": "directory", "dest_dir": str(tmp_path / "backups"),
        "dest_drive": "vtape0", "dest_pool": "default", "verify_after_write": "y",
    }
    data.update(overrides)
    return data


def _field_errors(html, field):
    block = re.search(rf'<div class="mb-3 field-{field}">(.*?)</div>\s*(?:<div class="mb-3|</fieldset>|<button)',
                      html, re.S)
    assert block, f"no field {field}"
    return re.findall(r'<div class="invalid-feedback[^"]*">(.*?)</div>', block.group(1))


def test_create_a_project_through_the_form(client, tmp_path):
    response = client.post("/backup/projects/new", data={**_form(tmp_path), "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    project = db.session.scalar(db.select(Project))
    assert project.name == "设计稿" and project.excludes == ["*.tmp", "cache/"] and not project.encrypted
    assert project.dest_path == str(tmp_path / "backups")
    assert db.session.scalar(db.select(AuditEvent.action)) == "project.create"
    assert "已创建项目 设计稿。" in client.get("/backup").get_data(as_text=True)


def test_errors_from_projects_validate_appear_next_to_their_fields(client, tmp_path):
    token = csrf_token(client)
    cases = [
        ({"sources": "/no/such/dir"}, "sources", "源 /no/such/dir 不存在"),
        ({"dest_dir": str(tmp_path / "srv" / "inner")}, "dest_dir", "位于源"),
        ({"level": "12"}, "level", "压缩级别必须在 0 到 9 之间"),
        ({"name": ""}, "name", "项目名称不能为空"),
        ({"mode": "sync", "password": "pw"}, "encrypted", "同步模式按原样复制文件；加密需要归档模式"),
        ({"dest_kind": "tape", "dest_drive": "lto9"}, "dest_drive", "未知的磁带机 lto9"),
        ({"excludes": "[z-a]"}, "excludes", "无效的包含/排除规则"),
        ({"group_max_mib": "0"}, "group_max_mib", None),
    ]
    for overrides, field, expected in cases:
        response = client.post("/backup/projects/new", data={**_form(tmp_path), **overrides, "csrf_token": token})
        html = response.get_data(as_text=True)
        assert response.status_code == 422, overrides
        errors = _field_errors(html, field)
        assert errors, (overrides, field)
        if expected:
            assert any(expected in e for e in errors), (errors, expected)
        assert 'class="alert alert-danger form-error"' not in html  # each error sits by its field
    assert db.session.scalar(db.select(db.func.count(Project.id))) == 0


def test_a_duplicate_name_is_reported_on_the_name_field(client, tmp_path):
    make_project(tmp_path)
    html = client.post("/backup/projects/new", data={**_form(tmp_path), "csrf_token": csrf_token(client)})
    assert "已有名为 设计稿 的项目" in _field_errors(html.get_data(as_text=True), "name")[0]


def test_the_password_is_write_only_and_an_empty_field_keeps_it(client, tmp_path):
    token = csrf_token(client)
    client.post("/backup/projects/new", data={**_form(tmp_path, password="s3cret-pw"), "csrf_token": token})
    project = db.session.scalar(db.select(Project))
    project_id, secret_id = project.id, project.secret_id
    assert project.encrypted and keys.reveal(secret_id) == "s3cret-pw"
    html = client.get(f"/backup/projects/{project_id}/edit").get_data(as_text=True)
    assert "s3cret-pw" not in html
    assert re.search(r'<input[^>]*name="password"[^>]*type="password" value=""', html) or \
        re.search(r'<input[^>]*type="password"[^>]*value=""', html)
    # Save with the password left empty and encryption still ticked: the stored password stays.
    client.post(f"/backup/projects/{project_id}/edit",
                data={**_form(tmp_path, level="3", encrypted="y"), "csrf_token": token})
    db.session.expire_all()
    project = db.session.get(Project, project_id)
    assert project.compression_level == 3 and project.secret_id == secret_id and project.encrypted
    # A new password replaces it.
    client.post(f"/backup/projects/{project_id}/edit",
                data={**_form(tmp_path, password="other", encrypted="y"), "csrf_token": token})
    db.session.expire_all()
    assert keys.reveal(db.session.get(Project, project_id).secret_id) == "other"


def test_edit_keeps_a_source_whose_name_is_not_utf8_byte_exact(client, tmp_path):
    raw = os.fsencode(tmp_path) + b"/src-\xff\xfe"
    os.mkdir(raw)
    project = make_project(tmp_path)
    project.sources = [os.fsdecode(raw)]
    db.session.commit()
    project_id = project.id
    html = client.get(f"/backup/projects/{project_id}/edit").get_data(as_text=True)
    shown = re.search(r'<textarea[^>]*name="sources"[^>]*>\s*(.*?)</textarea>', html, re.S).group(1).strip()
    assert shown.endswith("src-\\xff\\xfe")
    client.post(f"/backup/projects/{project_id}/edit",
                data={**_form(tmp_path, sources=shown + "\n"), "csrf_token": csrf_token(client)})
    db.session.expire_all()
    assert os.fsencode(db.session.get(Project, project_id).sources[0]) == raw


def test_tape_destination_and_sync_options(client, tmp_path):
    token = csrf_token(client)
    client.post("/backup/projects/new", data={**_form(tmp_path, dest_kind="tape", dest_pool="night",
                                                         verify_after_write=""), "csrf_token": token})
    project = db.session.scalar(db.select(Project))
    assert (project.dest_kind, project.dest_drive, project.dest_pool, project.verify_after_write) == \
        ("tape", "vtape0", "night", False)
    client.post("/backup/projects/new", data={
        **_form(tmp_path, name="mirror", mode="sync", sync_strategy="incremental", dest_dir=str(tmp_path / "m")),
        "csrf_token": token})
    mirror = db.session.scalar(db.select(Project).where(Project.name == "mirror"))
    assert (mirror.mode, mirror.sync_strategy) == ("sync", "incremental")


def test_delete_asks_for_confirmation_and_is_refused_while_a_job_is_active(client, tmp_path):
    project = make_project(tmp_path)
    project_id = project.id
    html = client.get(f"/backup/projects/{project_id}/edit").get_data(as_text=True)
    assert 'class="delete-project"' in html and 'data-confirm="删除项目 设计稿？' in html
    job_id = queue.enqueue(project, actor="test").id
    token = csrf_token(client)
    client.post(f"/backup/projects/{project_id}/delete", data={"csrf_token": token})
    assert "有任务 #1 尚未结束；请先取消它" in client.get("/backup").get_data(as_text=True)
    queue.request_cancel(job_id, actor="test")
    assert client.post(f"/backup/projects/{project_id}/delete", data={"csrf_token": token}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Project, project_id) is None
    assert db.session.get(Job, job_id).project_name == "设计稿"  # history keeps the job


def test_turning_encryption_off_and_moving_the_destination_are_audited_with_old_and_new(client, tmp_path):
    from stagebackup.models import AuditEvent

    token = csrf_token(client)
    client.post("/backup/projects/new", data={**_form(tmp_path, password="pw"), "csrf_token": token})
    project_id = db.session.scalar(db.select(Project.id))
    client.post(f"/backup/projects/{project_id}/edit", data={**_form(tmp_path, level="3", encrypted="y"),
                                                             "csrf_token": token})
    assert db.session.query(AuditEvent).filter(AuditEvent.action != "project.update",
                                               AuditEvent.action != "project.create").count() == 0
    moved = str(tmp_path / "elsewhere")
    client.post(f"/backup/projects/{project_id}/edit", data={**_form(tmp_path, dest_dir=moved), "csrf_token": token})
    events = {e.action: e.details for e in db.session.query(AuditEvent)}
    assert events["project.encryption_off"] == {"old": True, "new": False}
    change = events["project.destination"]
    assert change["old"]["dest_path"] == str(tmp_path / "backups") and change["new"]["dest_path"] == moved


def test_an_empty_form_shows_every_error_at_once(client, tmp_path):
    response = client.post("/backup/projects/new", data={
        **_form(tmp_path, name="", sources="", dest_dir="", level="12", group_max_mib="0"),
        "csrf_token": csrf_token(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for field in ("name", "sources", "dest_dir", "level", "group_max_mib"):
        assert _field_errors(html, field), field
    assert any("1 MiB" in error for error in _field_errors(html, "group_max_mib"))
    assert db.session.scalar(db.select(db.func.count(Project.id))) == 0


def test_a_group_size_of_one_mib_is_the_minimum_and_accepted(client, tmp_path):
    response = client.post("/backup/projects/new", data={**_form(tmp_path, group_max_mib="1"),
                                                          "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert db.session.scalar(db.select(Project.group_max_bytes)) == 1024 * 1024


def test_relative_paths_are_refused_on_their_fields(client, tmp_path):
    html = client.post("/backup/projects/new", data={**_form(tmp_path, sources="static", dest_dir="backups"),
                                                      "csrf_token": csrf_token(client)}).get_data(as_text=True)
    assert any("不是绝对路径" in error for error in _field_errors(html, "sources"))
    assert any("不是绝对路径" in error for error in _field_errors(html, "dest_dir"))


def test_a_refused_encrypted_form_keeps_values_but_asks_for_the_password_again(client, tmp_path):
    token = csrf_token(client)
    inside = str(tmp_path / "srv" / "inner")
    response = client.post("/backup/projects/new", data={
        **_form(tmp_path, dest_dir=inside, encrypted="y", password="s3cret-pw"), "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "s3cret-pw" not in html
    assert re.search(r'<input[^>]*checked[^>]*id="encrypted"|<input[^>]*id="encrypted"[^>]*checked', html)
    assert inside in html and "*.tmp" in html
    assert any("重新输入" in error for error in _field_errors(html, "password"))
    # The destination fixed, the password not typed again: refused, never saved unencrypted.
    response = client.post("/backup/projects/new", data={**_form(tmp_path, encrypted="y"), "csrf_token": token})
    assert response.status_code == 422
    assert any("需要密码" in error for error in _field_errors(response.get_data(as_text=True), "password"))
    assert db.session.scalar(db.select(db.func.count(Project.id))) == 0
    response = client.post("/backup/projects/new", data={**_form(tmp_path, encrypted="y", password="s3cret-pw"),
                                                          "csrf_token": token})
    assert response.status_code == 302
    assert db.session.scalar(db.select(Project.encrypted)) is True
