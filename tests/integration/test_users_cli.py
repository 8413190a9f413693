"""``flask users``: create (typed twice or from stdin), list, passwd, remove, needs-admin."""

from __future__ import annotations

import json

from sqlalchemy import select

from stagebackup.auth import accounts
from stagebackup.extensions import db
from stagebackup.models import AuditEvent, User

from .web_support import CSRF_META

PASSWORD = "a long enough password"


def test_the_first_admin_is_created_from_a_typed_password(runner):
    assert "flask users create NAME --role admin" in runner.invoke(args=["users", "needs-admin"]).output
    result = runner.invoke(args=["users", "create", "alice", "--role", "admin"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # typed without echo
    assert runner.invoke(args=["users", "needs-admin"]).output == ""
    assert accounts.authenticate("alice", PASSWORD) is not None
    stored = db.session.scalar(select(User.password_hash).where(User.name == "alice"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_two_different_typed_passwords_create_nothing(runner):
    result = runner.invoke(args=["users", "create", "bob"], input=f"{PASSWORD}\nsomething else\n")
    assert result.exit_code != 0
    assert db.session.scalar(select(User).where(User.name == "bob")) is None


def test_list_passwd_and_remove(runner, app):
    for name, role in (("alice", "admin"), ("bob", "viewer")):
        result = runner.invoke(args=["users", "create", name, "--role", role, "--password-stdin"],
                               input=PASSWORD + "\n")
        assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(args=["users", "list", "--json"]).output)
    assert [(row["name"], row["role"]) for row in listed] == [("alice", "admin"), ("bob", "viewer")]
    assert set(listed[0]) == {"name", "role", "created_at", "last_sign_in_at"}  # never a hash

    result = runner.invoke(args=["users", "passwd", "bob", "--password-stdin"], input="a brand new secret\n")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert accounts.authenticate("bob", PASSWORD) is None
    assert accounts.authenticate("bob", "a brand new secret") is not None

    refused = runner.invoke(args=["users", "remove", "alice"])
    assert refused.exit_code == 4 and "last admin" in refused.output  # a conflict
    assert runner.invoke(args=["users", "remove", "bob"]).exit_code == 0
    db.session.expire_all()
    assert [user.name for user in accounts.all_users()] == ["alice"]
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.actor.startswith("cli"))).all()
    assert actions == ["user.create", "user.create", "user.passwd", "user.remove"]


def test_bad_input_is_a_one_line_error(runner):
    cases = [
        (["users", "create", "has space", "--password-stdin"], PASSWORD + "\n", "without spaces"),
        (["users", "create", "carol", "--password-stdin"], "short\n", "8 to 1024 characters"),
        (["users", "create", "carol", "--role", "root", "--password-stdin"], PASSWORD + "\n", "Invalid value"),
        (["users", "passwd", "nobody", "--password-stdin"], PASSWORD + "\n", "No user named nobody"),
        (["users", "remove", "nobody"], None, "No user named nobody"),
    ]
    for args, stdin, message in cases:
        result = runner.invoke(args=args, input=stdin)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_user_created_by_the_cli_signs_in_on_the_page(runner, app):
    runner.invoke(args=["users", "create", "dora", "--role", "viewer", "--password-stdin"], input=PASSWORD + "\n")
    client = app.test_client(user=None)
    token = CSRF_META.search(client.get("/sign-in").get_data(as_text=True)).group(1)
    response = client.post("/sign-in", data={"name": "dora", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    assert client.get("/backup").status_code == 200
