"""Sign-in, sign-out, sessions, throttling, /healthz and the audit trail, through the real sign-in page."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from stagebackup.auth import accounts
from stagebackup.extensions import db
from stagebackup.models import AuditEvent, User

from ..conftest import make_app
from .web_support import CSRF_META, count_queries, make_project

PASSWORD = "correct horse battery"


@pytest.fixture
def alice(app):
    accounts.create("alice", "operator", PASSWORD, actor="test")
    db.session.commit()
    return "alice"


def _token(client, path="/sign-in") -> str:
    return CSRF_META.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, name, password, next_url=None, **kwargs):
    token = _token(client)
    query = {"next": next_url} if next_url is not None else {}
    return client.post("/sign-in", query_string=query,
                       data={"name": name, "password": password, "csrf_token": token}, **kwargs)


def _audit(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_anonymous_pages_go_to_sign_in_and_healthz_says_only_ok(app):
    client = app.test_client(user=None)
    response = client.get("/backup/history?project=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/backup/history?project%3Dx"
    health = client.get("/healthz")
    assert health.status_code == 200 and health.data == b"ok" and health.mimetype == "text/plain"
    assert client.get("/static/css/app.css").status_code == 200


def test_the_sign_in_page_says_how_to_create_the_first_admin(app):
    client = app.test_client(user=None)
    assert "flask users create NAME --role admin" in client.get("/sign-in").get_data(as_text=True)
    accounts.create("root", "admin", PASSWORD, actor="test")
    db.session.commit()
    assert "flask users create" not in client.get("/sign-in").get_data(as_text=True)


def test_a_wrong_password_is_refused_audited_and_never_logged(app, alice, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client(user=None)
    response = sign_in(client, "alice", "not the password", next_url="/backup")
    assert response.status_code == 401
    assert "用户名或密码不正确" in response.get_data(as_text=True)
    assert client.get("/backup").status_code == 302  # still anonymous
    assert sign_in(client, "nobody", PASSWORD).status_code == 401  # an unknown name: the same answer
    failed = _audit("auth.sign_in_failed")
    assert [(event.actor, event.target) for event in failed] == [("web:-", "alice"), ("web:-", "nobody")]
    rows = " ".join(f"{e.actor} {e.target} {e.remark} {e.details}" for e in db.session.scalars(select(AuditEvent)))
    assert "not the password" not in rows and PASSWORD not in rows
    assert "not the password" not in caplog.text and PASSWORD not in caplog.text


def test_sign_in_starts_a_new_session_with_safe_cookie_flags(app, alice):
    client = app.test_client(user=None)
    before = _token(client)
    with client.session_transaction() as session:
        session["planted"] = "by someone before the sign-in"
        raw_token = session["csrf_token"]
    response = sign_in(client, "alice", PASSWORD, next_url="/backup/history")
    with client.session_transaction() as session:
        assert "planted" not in session and session.get("csrf_token") != raw_token  # a new session
    assert response.status_code == 302 and response.headers["Location"] == "/backup/history"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    expires = re.search(r"Expires=([^;]+)", cookie).group(1)
    lifetime = datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < lifetime <= timedelta(hours=12)
    page = client.get("/backup")
    assert page.status_code == 200 and 'id="signed-in-user">alice' in page.get_data(as_text=True)
    assert CSRF_META.search(page.get_data(as_text=True)).group(1) != before  # nothing kept from before
    assert [(e.actor, e.target) for e in _audit("auth.sign_in")] == [("web:alice", "alice")]
    assert db.session.scalar(select(User.last_sign_in_at).where(User.name == "alice")) is not None


def test_https_deployments_get_secure_cookies_and_their_own_lifetime(tmp_path):
    app = make_app(tmp_path, SESSION_COOKIE_SECURE=True, SESSION_LIFETIME_S=600)
    with app.app_context():
        accounts.create("alice", "viewer", PASSWORD, actor="test")
        db.session.commit()
        client = app.test_client(user=None)
        cookie = sign_in(client, "alice", PASSWORD).headers["Set-Cookie"]
        assert "Secure" in cookie
        assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(seconds=600)
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("target", [
    "//evil.example/", "https://evil.example/backup", "/\\evil.example", "/backup\nLocation: http://evil",
    "javascript:alert(1)", "backup", "",
])
def test_next_only_leads_to_this_site(app, alice, target):
    response = sign_in(app.test_client(user=None), "alice", PASSWORD, next_url=target)
    assert response.status_code == 302 and response.headers["Location"] == "/backup"


def test_a_relative_next_with_a_query_is_kept(app, alice):
    response = sign_in(app.test_client(user=None), "alice", PASSWORD, next_url="/backup/history?status=failed")
    assert response.headers["Location"] == "/backup/history?status=failed"


def test_sign_out_needs_the_csrf_token_and_ends_the_session(app, alice):
    client = app.test_client(user=None)
    sign_in(client, "alice", PASSWORD)
    assert client.post("/sign-out").status_code == 400  # no CSRF token
    token = _token(client, "/backup")
    response = client.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    assert client.get("/backup").status_code == 302
    assert [(e.actor, e.target) for e in _audit("auth.sign_out")] == [("web:alice", "alice")]


def test_a_new_password_signs_the_user_out_everywhere(app, alice):
    client = app.test_client(user=None)
    sign_in(client, "alice", PASSWORD)
    assert client.get("/backup").status_code == 200
    accounts.set_password("alice", "another long password", actor="test")
    db.session.commit()
    assert client.get("/backup").status_code == 302
    assert sign_in(client, "alice", PASSWORD).status_code == 401
    assert sign_in(client, "alice", "another long password").status_code == 302


def test_a_removed_user_is_signed_out(app, alice):
    client = app.test_client(user="alice")
    assert client.get("/backup").status_code == 200
    accounts.remove("alice", actor="test")
    db.session.commit()
    assert client.get("/backup").status_code == 302


def test_an_old_hash_is_replaced_at_sign_in(app, alice):
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    db.session.execute(db.update(User).where(User.name == "alice").values(password_hash=weak))
    db.session.commit()
    assert sign_in(app.test_client(user=None), "alice", PASSWORD).status_code == 302
    db.session.expire_all()
    stored = db.session.scalar(select(User.password_hash).where(User.name == "alice"))
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)


def test_sign_in_is_throttled_per_address(app, alice):
    client = app.test_client(user=None)
    for attempt in range(10):
        assert sign_in(client, f"guess{attempt}", "wrong password").status_code == 401
    response = sign_in(client, "alice", PASSWORD)
    assert response.status_code == 429 and "登录尝试过多" in response.get_data(as_text=True)
    other = app.test_client(user=None)
    assert sign_in(other, "alice", PASSWORD,
                   environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 302  # another address


def test_sign_in_is_throttled_per_user_name_in_the_pages_language(app, alice):
    client = app.test_client(user=None)
    client.set_cookie("lang", "en")
    for attempt in range(10):
        response = sign_in(client, "alice", "wrong password", environ_base={"REMOTE_ADDR": f"192.0.2.{attempt}"})
        assert response.status_code == 401
    response = sign_in(client, "alice", PASSWORD, environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.get_data(as_text=True)


def test_the_gate_costs_one_look_up_per_request(app, alice):
    """web_support.count_queries leaves this look-up out of the page costs it measures: here it is counted."""
    client = app.test_client(user="alice")
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    db.session.remove()
    db.event.listen(db.engine, "before_cursor_execute", record)
    try:
        with count_queries() as counted:
            assert client.get("/backup/history").status_code == 200
    finally:
        db.event.remove(db.engine, "before_cursor_execute", record)
    user_lookups = [statement for statement in seen if re.search(r"\bFROM users\b", statement)]
    assert len(user_lookups) == 1 and user_lookups[0] not in counted


def test_web_actions_carry_the_signed_in_user(app, tmp_path):
    project = make_project(tmp_path, "设计稿")
    client = app.test_client(user="operator")
    token = _token(client, "/backup")
    client.post(f"/backup/projects/{project.id}/run", data={"csrf_token": token, "remark": ""})
    assert [event.actor for event in _audit("job.run")] == ["web:operator"]


def test_a_role_too_low_gets_a_page_that_says_so(app, tmp_path):
    project = make_project(tmp_path, "设计稿")
    client = app.test_client(user="viewer")
    token = _token(client, "/backup")
    response = client.post(f"/backup/projects/{project.id}/run", data={"csrf_token": token})
    assert response.status_code == 403 and "您的角色（查看者）不能执行此操作" in response.get_data(as_text=True)
    assert _audit("job.run") == []


def test_the_refusal_speaks_english_on_request(app, tmp_path):
    project = make_project(tmp_path, "设计稿")
    client = app.test_client(user="viewer")
    client.set_cookie("lang", "en")
    response = client.get(f"/backup/projects/{project.id}/edit")
    assert response.status_code == 403 and "Your role (Viewer) cannot do this" in response.get_data(as_text=True)


def test_healthz_answers_503_and_nothing_more_when_the_database_is_down(tmp_path):
    """A real unreachable PostgreSQL (nothing listens on port 9): the container's check must fail, quietly."""
    down = make_app(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2",
                    SCHEMA_AUTO_UPGRADE=False)
    with down.app_context():
        health = down.test_client(user=None).get("/healthz")
        db.session.remove()
    assert health.status_code == 503 and health.data == b"unavailable"
    assert health.headers["Cache-Control"] == "no-store"
