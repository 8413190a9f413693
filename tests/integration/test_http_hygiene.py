"""HTTP hygiene: allowed hosts, body limit, integers that fit a database, proxies, framing."""

from __future__ import annotations

import io

import pytest

from stagebackup.extensions import db
from stagebackup.models import AuditEvent
from tests.conftest import make_app

from .web_support import csrf_token, make_project


@pytest.mark.parametrize("host", ["localhost", "localhost:5555", "127.0.0.1:8080", "[::1]:5555", "LOCALHOST."])
def test_local_host_names_are_served(client, host):
    # Served: the page, or (the session cookie belongs to another host name) the sign-in redirect — never 400.
    assert client.get("/backup", headers={"Host": host}).status_code in (200, 302)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:5555", "127.0.0.1.evil.example", "[::2]", "a:b:c",
                                  "localhost:port"])
def test_other_host_names_get_400(client, host):
    response = client.get("/backup", headers={"Host": host})
    assert response.status_code == 400 and b"STAGEBACKUP_ALLOWED_HOSTS" in response.data
    assert client.get("/static/css/app.css", headers={"Host": host}).status_code == 400


def test_the_operator_adds_host_names(tmp_path):
    app = make_app(tmp_path, ALLOWED_HOSTS="backup.lan, 10.0.0.5")
    client = app.test_client()
    assert client.get("/backup", headers={"Host": "backup.lan:5555"}).status_code in (200, 302)
    assert client.get("/backup", headers={"Host": "10.0.0.5"}).status_code in (200, 302)
    assert client.get("/backup", headers={"Host": "localhost"}).status_code == 200
    assert client.get("/backup", headers={"Host": "evil.example"}).status_code == 400
    with app.app_context():
        db.engine.dispose()


def test_a_request_body_above_the_limit_is_413(client, tmp_path):
    project = make_project(tmp_path)
    response = client.post(f"/backup/projects/{project.id}/run",
                           data={"remark": "x" * (2 * 1024 * 1024), "csrf_token": csrf_token(client)})
    assert response.status_code == 413


@pytest.mark.parametrize("number", [2**63 - 1, 2**63, 2**64, 10**40])
def test_huge_ids_in_urls_are_404(client, number):
    for url in (f"/backup/jobs/{number}", f"/backup/jobs/{number}/card", f"/restore/backups/{number}"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize("query", ["after=99999999999999999999999", "after=-5", "after=x", "after=1e3"])
def test_query_integers_out_of_range_are_400(client, tmp_path, query):
    from .web_support import queued_job

    job_id = queued_job(tmp_path)
    response = client.get(f"/backup/jobs/{job_id}/card?{query}")  # the log's cursor in the card's poll
    assert response.status_code == 400 and b"after" in response.data


@pytest.mark.parametrize("url", ["/restore?project=18446744073709551616", "/backup/history?page=99999999999999999999",
                                 "/api/explorer/list?path=/&offset=99999999999999999999999"])
def test_other_query_integers_never_give_500(client, url):
    assert client.get(url).status_code == 400


def test_a_newline_in_next_and_a_file_in_a_text_field_give_no_500(client, tmp_path):
    assert client.get("/lang/en?next=/backup%0d%0aSet-Cookie:x=1").status_code == 302
    project = make_project(tmp_path)
    response = client.post(f"/backup/projects/{project.id}/run",
                           data={"remark": (io.BytesIO(b"payload"), "remark.txt"), "csrf_token": csrf_token(client)},
                           content_type="multipart/form-data")
    assert response.status_code < 500


def test_frames_are_denied_beside_the_csp(client):
    response = client.get("/backup")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def seen_address(app) -> str:
    """The client address a failed sign-in records in the audit log (what the rate limit counts by, too)."""
    client = app.test_client(user=None)
    with app.app_context():
        client.post("/sign-in", data={"csrf_token": csrf_token(client, "/sign-in"), "name": "nobody",
                                      "password": "wrong password"},
                    headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        event = db.session.query(AuditEvent).filter_by(action="auth.sign_in_failed").order_by(AuditEvent.id.desc())
        address = event.first().details["address"]
        db.engine.dispose()
    return address


def test_forwarded_headers_are_ignored_unless_a_proxy_count_is_set(tmp_path):
    assert seen_address(make_app(tmp_path)) == "127.0.0.1"
    assert seen_address(make_app(tmp_path / "proxied", PROXY_COUNT=1)) == "203.0.113.9"
