"""Every route × every role, from the app's own URL map: a route without a decision fails here.

The gate (stagebackup/auth/gate.py) sends anonymous page requests to the sign-in page and answers htmx and
the JSON API with 401; a signed-in user below the endpoint's declared role gets 403; a user with the role
gets past the gate (whatever the view then says about the made-up ids). CSRF is off in this app so the
gate's decision is what is measured: CSRF itself is tested in test_web_security.py.
"""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter, PathConverter, Rule

from stagebackup.auth.roles import ADMIN, OPERATOR, PUBLIC, ROLES, VIEWER, declared_role
from stagebackup.extensions import db

from ..conftest import make_app

# Reachable without signing in: nothing behind them reads or changes the server's data.
PUBLIC_ENDPOINTS = {"static", "auth.sign_in", "auth.healthz", "backup.switch_language"}
SAMPLE_VALUES = {IntegerConverter: 1, PathConverter: "css/app.css"}


@pytest.fixture
def gate_app(tmp_path):
    application = make_app(tmp_path, WTF_CSRF_ENABLED=False)
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def _url(app: Flask, rule: Rule) -> str:
    values = {arg: next((sample for kind, sample in SAMPLE_VALUES.items() if isinstance(rule._converters[arg], kind)),
                        "x") for arg in rule.arguments}
    with app.test_request_context():
        return app.url_for(rule.endpoint, **values)


def _requests(app: Flask):
    """(endpoint, method, url) for every rule and method of the URL map."""
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, _url(app, rule)


def undeclared(app: Flask) -> list[str]:
    return sorted({rule.endpoint for rule in app.url_map.iter_rules() if declared_role(app, rule.endpoint) is None})


def test_every_endpoint_declares_a_role(gate_app):
    assert undeclared(gate_app) == []
    public = {rule.endpoint for rule in gate_app.url_map.iter_rules()
              if declared_role(gate_app, rule.endpoint) == PUBLIC}
    assert public == PUBLIC_ENDPOINTS


def test_nothing_that_changes_data_is_open_to_viewers(gate_app):
    """Every POST needs an operator or an admin (signing out is the user's own business)."""
    for endpoint, method, _url in _requests(gate_app):
        if method == "POST" and endpoint not in ("auth.sign_out", "auth.sign_in"):
            assert declared_role(gate_app, endpoint) in (OPERATOR, ADMIN), endpoint


def test_the_main_decisions(gate_app):
    expected = {
        "backup.index": VIEWER, "backup.job_card": VIEWER, "restore.browse_backup": VIEWER,
        "explorer.list_api": VIEWER, "backup.run_project": OPERATOR, "backup.cancel_job": OPERATOR,
        "restore.start_restore": OPERATOR, "restore.start_verify": OPERATOR, "backup.new_project": ADMIN,
        "backup.edit_project": ADMIN, "backup.delete_project": ADMIN,
    }
    assert {endpoint: declared_role(gate_app, endpoint) for endpoint in expected} == expected


def _refused_for_anonymous(response, endpoint: str, url: str, htmx: bool) -> None:
    where = f"{endpoint} {url} (htmx={htmx})"
    if htmx:
        assert response.status_code == 401, where
        assert response.headers["HX-Redirect"].startswith("/sign-in"), where
    elif url.startswith("/api/"):
        assert response.status_code == 401 and response.is_json, where
    else:
        assert response.status_code == 302, where
        assert response.headers["Location"].startswith("/sign-in"), where


def test_every_route_for_every_role(gate_app):
    clients = {role: gate_app.test_client(user=role) for role in ROLES}
    anonymous = gate_app.test_client(user=None)
    checked = 0
    for endpoint, method, url in _requests(gate_app):
        required = declared_role(gate_app, endpoint)
        if endpoint == "auth.sign_out":  # would sign the shared clients out: its own test below
            continue
        for htmx in (False, True):
            headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/backup"} if htmx else {}
            response = anonymous.open(url, method=method, headers=headers)
            if required == PUBLIC:
                assert response.status_code not in (401, 403), (endpoint, url)
            else:
                _refused_for_anonymous(response, endpoint, url, htmx)
        for role, client in clients.items():
            response = client.open(url, method=method)
            allowed = required == PUBLIC or ROLES.index(role) >= ROLES.index(required)
            if allowed:
                assert response.status_code not in (401, 403), (role, endpoint, url, response.status_code)
                assert not response.headers.get("Location", "").startswith("/sign-in"), (role, endpoint)
            else:
                assert response.status_code == 403, (role, endpoint, url, response.status_code)
            checked += 1
    assert checked > 4 * 20  # the walk really walked


def test_sign_out_needs_a_signed_in_user(gate_app):
    response = gate_app.test_client(user=None).post("/sign-out")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert gate_app.test_client(user=VIEWER).post("/sign-out").status_code == 302


def test_a_route_without_a_decision_is_refused_and_reported(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=False)
    app.add_url_rule("/forgotten", "forgotten", lambda: "secret")
    with app.app_context():
        assert undeclared(app) == ["forgotten"]
        for user in (None, *ROLES):
            response = app.test_client(user=user).get("/forgotten")
            assert response.status_code in (302, 403) and b"secret" not in response.data
        assert app.test_client(user=ADMIN).get("/forgotten").status_code == 403


def test_anonymous_unknown_urls_go_to_sign_in_and_reveal_nothing(gate_app):
    response = gate_app.test_client(user=None).get("/no/such/page")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert gate_app.test_client(user=VIEWER).get("/no/such/page").status_code == 404
