"""Content-Security-Policy on every response, no inline script anywhere, CSRF on every form and htmx POST."""

import re
from pathlib import Path

import pytest

from stagebackup.extensions import db
from stagebackup.models import Job, Project

from .web_support import csrf_token, make_project, queued_job, running_job

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _assert_csp(response):
    policy = response.headers.get("Content-Security-Policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'", policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["default-src"] == "'self'" and directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_response_carries_the_csp(client, tmp_path):
    job_id = running_job(tmp_path)
    project_id = db.session.scalar(db.select(Project.id))
    token = csrf_token(client)
    responses = [client.get(url) for url in [
        "/", "/backup", "/backup/history", f"/backup/jobs/{job_id}", f"/backup/jobs/{job_id}/card",
        f"/backup/jobs/{job_id}/card?after=0", "/backup/live?after=0", f"/backup/jobs/{job_id}/log/download",
        "/backup/projects/new", f"/backup/projects/{project_id}/edit", "/api/backup/running-tasks",
        "/static/vendor/htmx/htmx.min.js", "/static/css/app.css", "/no/such/page", "/lang/en", "/explorer",
    ]]
    responses.append(client.post(f"/backup/projects/{project_id}/run", data={}))  # 400: no CSRF token
    responses.append(client.post(f"/backup/jobs/{job_id}/cancel", headers={"X-CSRFToken": token, "HX-Request": "true"}))
    for response in responses:  # a streamed body (the log download) ends its request context when read, here;
        response.get_data()  # left to the garbage collector it would pop it during a later test
        response.close()
    assert {r.status_code for r in responses} >= {200, 302, 400, 404}
    for response in responses:
        _assert_csp(response)


def test_templates_have_no_inline_script_style_or_event_handler():
    for path in TEMPLATES.rglob("*.html"):
        text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.S)  # Jinja comments are not output
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, f"{path}: inline <script>"
        for body in re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.S):
            assert body.strip() == "", f"{path}: script body"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path}: inline event handler"
        assert not re.search(r"\shx-on", text), f"{path}: hx-on evaluates code (blocked without unsafe-eval)"
        assert "<style" not in text and not re.search(r'\sstyle="', text), f"{path}: inline style"
        assert "javascript:" not in text.lower()


def test_rendered_pages_load_scripts_only_from_static(client, tmp_path):
    job_id = running_job(tmp_path)
    for url in ["/backup", f"/backup/jobs/{job_id}", "/backup/history", "/backup/projects/new"]:
        html = client.get(url).get_data(as_text=True)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all(body.strip() == "" for _attrs, body in scripts)
        assert all(re.search(r'src="/static/', attrs) for attrs, _body in scripts)
        assert "cdn" not in html.lower()
        # htmx must not inject its indicator <style> (the CSP would block it).
        assert '"includeIndicatorStyles": false' in html


def test_htmx_requests_carry_the_csrf_token_from_the_body(client):
    html = client.get("/backup").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\'' in html


@pytest.mark.parametrize("with_token", [False, True])
def test_cancel_needs_the_csrf_header(client, tmp_path, with_token):
    job_id = queued_job(tmp_path)
    headers = {"HX-Request": "true"}
    if with_token:
        headers["X-CSRFToken"] = csrf_token(client)
    response = client.post(f"/backup/jobs/{job_id}/cancel", headers=headers)
    db.session.expire_all()
    if with_token:
        assert response.status_code == 200 and db.session.get(Job, job_id).status == "cancelled"
    else:
        assert response.status_code == 400 and db.session.get(Job, job_id).status == "queued"


def test_forms_refuse_a_missing_or_wrong_token(client, tmp_path):
    project = make_project(tmp_path)
    project_id = project.id
    for url, data in [
        (f"/backup/projects/{project_id}/run", {"remark": "x"}),
        (f"/backup/projects/{project_id}/delete", {}),
        ("/backup/projects/new", {"name": "n", "sources": str(tmp_path), "dest_kind": "directory"}),
        (f"/backup/projects/{project_id}/edit", {"name": "renamed"}),
    ]:
        assert client.post(url, data=data).status_code == 400
        assert client.post(url, data={**data, "csrf_token": "forged"}).status_code == 400
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(Job.id))) == 0
    assert db.session.scalars(db.select(Project.name)).all() == ["设计稿"]


def test_language_switch_is_not_an_open_redirect(client):
    response = client.get("/lang/en?next=//evil.example/x")
    assert response.status_code == 302 and response.headers["Location"] == "/backup"
    for target in ("https://evil.example/", "/\\evil.example/x", "javascript:alert(1)"):
        response = client.get("/lang/en", query_string={"next": target})
        assert response.headers["Location"] == "/backup", target
