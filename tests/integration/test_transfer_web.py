"""Export download and the import form: upload, preview (created, replaced, skipped, passwords), confirm."""

from __future__ import annotations

import io
import json
import re

from stagebackup import projects, transfer
from stagebackup.extensions import db

from .test_transfer import _state
from .web_support import csrf_token, make_project

ROW = re.compile(r'<tr data-import="(\d+)" data-action="(\w+)">')
TOKEN = re.compile(r'name="token" type="hidden" value="([0-9a-f]+)"')


def _upload(client, raw: bytes, on_conflict: str = "skip"):
    return client.post("/backup/projects/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(client), "on_conflict": on_conflict, "file": (io.BytesIO(raw), "projects.json")})


def _exported_and_removed(tmp_path) -> bytes:
    """An export of 设计稿 (kept), 财务 (encrypted, then removed) and 新 (removed)."""
    make_project(tmp_path, "设计稿")
    make_project(tmp_path, "财务", password="s3cret")
    make_project(tmp_path, "新")
    raw = transfer.dumps(transfer.export_document()).encode()
    projects.remove("财务", actor="test")
    projects.remove("新", actor="test")
    return raw


def test_export_downloads_the_document(client, tmp_path):
    make_project(tmp_path, "设计稿")
    make_project(tmp_path, "其他")
    page = client.get("/backup/projects/transfer").get_data(as_text=True)
    assert 'id="export-download"' in page and 'value="设计稿"' in page
    response = client.get("/backup/projects/export?project=设计稿")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="stagebackup-projects-')
    assert json.loads(response.data) == transfer.export_document(["设计稿"])
    assert len(json.loads(client.get("/backup/projects/export").data)["projects"]) == 2
    assert client.get("/backup/projects/export?project=nope").status_code == 400


def test_preview_then_confirm_with_the_typed_password(client, tmp_path):
    raw = _exported_and_removed(tmp_path)
    document = json.loads(raw)
    assert [p["name"] for p in document["projects"]] == ["新", "设计稿", "财务"]  # by name, as the database sorts
    document["projects"][0]["colour"] = "blue"  # unknown: reported, not dropped silently
    before = _state()
    preview = _upload(client, json.dumps(document).encode())
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert ROW.findall(html) == [("1", "create"), ("2", "skip"), ("3", "create")]
    assert "1 个需要重新输入密码" in html and 'name="password-3"' in html and 'name="password-1"' not in html
    assert '<code class="import-unknown">colour</code>' in html
    assert _state() == before  # a preview writes nothing

    token = TOKEN.search(html).group(1)
    form = {"csrf_token": csrf_token(client), "token": token, "on_conflict": "skip"}
    refused = client.post("/backup/projects/import/confirm", data=form)
    assert refused.status_code == 422 and "项目 #3 (财务)" in refused.get_data(as_text=True)
    assert _state() == before

    done = client.post("/backup/projects/import/confirm", data={**form, "password-3": "typed-again"})
    assert done.status_code == 302
    assert {p.name for p in db.session.scalars(db.select(projects.Project))} == {"设计稿", "财务", "新"}
    again = client.post("/backup/projects/import/confirm", data={**form, "password-3": "typed-again"})
    assert again.status_code == 422 and 'id="import-problems"' in again.get_data(as_text=True)  # staged file gone


def test_replace_and_rename_in_the_preview(client, tmp_path):
    make_project(tmp_path, "设计稿")
    raw = transfer.dumps(transfer.export_document()).encode()
    assert ROW.findall(_upload(client, raw, "replace").get_data(as_text=True)) == [("1", "replace")]
    html = _upload(client, raw, "rename").get_data(as_text=True)
    assert ROW.findall(html) == [("1", "rename")] and "设计稿 (2)" in html


def test_a_bad_file_is_refused_with_every_problem_and_nothing_written(client, tmp_path):
    client.set_cookie("lang", "en")
    raw = _exported_and_removed(tmp_path)
    before = _state()
    for body, message in [
        (b"{\"format\": ", "the file is not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (raw.replace(b'"level": 6', b'"level": "6"', 1), "Project #1 (新), field <code>level</code>"),
    ]:
        response = _upload(client, body)
        html = response.get_data(as_text=True)
        assert response.status_code == 422 and 'id="import-problems"' in html
        assert message in html, html[html.find("import-problems"):][:600]
    assert _state() == before
    no_file = client.post("/backup/projects/import", data={"csrf_token": csrf_token(client), "on_conflict": "skip"})
    assert no_file.status_code == 422
    bad_token = client.post("/backup/projects/import/confirm", data={
        "csrf_token": csrf_token(client), "token": "../../etc/passwd", "on_conflict": "skip"})
    assert bad_token.status_code == 422 and "upload it again" in bad_token.get_data(as_text=True)


def test_the_upload_limit(client, app, tmp_path):
    client.set_cookie("lang", "en")
    app.config["IMPORT_MAX_BYTES"] = 1000
    response = _upload(client, b" " * 5000)
    assert response.status_code == 422 and "the limit is 1000" in response.get_data(as_text=True)
