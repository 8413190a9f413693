"""Shared fixtures: a fresh app and database per test (SQLite file, a fresh PostgreSQL or MariaDB database)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import current_app, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, select, text

from stagebackup import create_app
from stagebackup.auth.accounts import account
from stagebackup.extensions import db
from stagebackup.models import User
from stagebackup.testing.corpus import Corpus, CorpusSpec, generate

REPO = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


@dataclass(frozen=True)
class DatabaseServer:
    """A throwaway server `make test` starts, and how to make and drop one test's database on it."""

    label: str
    env: str
    create: str
    drop: str

    @property
    def url(self) -> str | None:
        return os.environ.get(self.env)

    def fresh_database(self):
        if not self.url:
            if IN_CI:
                pytest.fail(f"{self.env} is not set: run the suite with `make test`")
            pytest.skip(f"no {self.label}: run the suite with `make test` (it starts a throwaway server)")
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(self.create.format(name)))
        yield make_url(self.url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(self.drop.format(name)))
        admin.dispose()


POSTGRES = DatabaseServer("PostgreSQL", "STAGEBACKUP_TEST_PG_URL", 'CREATE DATABASE "{}"',
                          'DROP DATABASE IF EXISTS "{}" WITH (FORCE)')
# The server's default collation (case-insensitive utf8mb4): StageBackup must not depend on it.
MARIADB = DatabaseServer("MariaDB", "STAGEBACKUP_TEST_MYSQL_URL", "CREATE DATABASE `{}`",
                         "DROP DATABASE IF EXISTS `{}`")


@pytest.fixture
def pg_database_url():
    """A brand-new PostgreSQL database for this test, dropped afterwards."""
    yield from POSTGRES.fresh_database()


@pytest.fixture
def mysql_database_url():
    """A brand-new MariaDB database for this test, dropped afterwards."""
    yield from MARIADB.fresh_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'backup_system.db'}"
    return request.getfixturevalue("mysql_database_url" if request.param == "mariadb" else "pg_database_url")


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mariadb", marks=pytest.mark.mariadb)])
def server_database_url(request):
    """A fresh database on each database server (PostgreSQL, MariaDB): for tests of row locks between processes."""
    return request.getfixturevalue("mysql_database_url" if request.param == "mariadb" else "pg_database_url")


CLIENT_USER_ROLES = {"admin": "admin", "operator": "operator", "viewer": "viewer"}


def signed_in_user(name: str) -> str:
    """The session id of user ``name`` (created on first use; role from ``CLIENT_USER_ROLES``, else viewer).
    Its password hash is unusable: the test client signs in through the session; tests of the sign-in page
    create real users.

    A transaction this look-up begins is ended here: on SQLite it holds the write lock, and a worker thread
    of the test must not wait for it."""
    was_open = db.session().in_transaction()
    user = db.session.scalar(select(User).where(User.name == name))
    created = user is None
    if created:
        user = User(name=name, role=CLIENT_USER_ROLES.get(name, "viewer"), password_hash="!",
                    session_token=uuid.uuid4().hex)
        db.session.add(user)
        db.session.flush()
    session_id = account(user).get_id()  # before the commit expires the row
    if created or not was_open:
        db.session.commit()
    return session_id


class SignedInClient(FlaskClient):
    """Every page needs a signed-in user: the test client is signed in as ``admin`` unless told otherwise.

    ``app.test_client(user=None)`` is anonymous; ``app.test_client(user="viewer")`` signs in as that user.
    """

    def __init__(self, *args, user: str | None = "admin", **kwargs):
        super().__init__(*args, **kwargs)
        if user is None:
            return
        if has_app_context() and current_app._get_current_object() is self.application:
            session_id = signed_in_user(user)  # the test's own session: no second writer
        else:
            with self.application.app_context():
                session_id = signed_in_user(user)
        with self.session_transaction() as session:
            session["_user_id"], session["_fresh"] = session_id, True


def make_app(tmp_path: Path, database_url: str | None = None, **overrides):
    config = {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url or "",
        "PROGRESS_FLUSH_INTERVAL_S": 0.05,
        # Each poll renders its own live regions, so a test sees its change at once; test_web_live.py
        # checks the shared rendering the server uses by default.
        "LIVE_REGIONS_SHARED_S": 0,
        "TESTING": True,
    }
    config.update(overrides)
    application = create_app(config)
    application.test_client_class = SignedInClient
    return application


def _in_context(application):
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(tmp_path):
    yield from _in_context(make_app(tmp_path))


@pytest.fixture
def any_db_app(tmp_path, database_url):
    """The app on SQLite, PostgreSQL and MariaDB (parametrised)."""
    yield from _in_context(make_app(tmp_path, database_url))


@pytest.fixture
def pg_app(tmp_path, pg_database_url):
    """The app on PostgreSQL only."""
    yield from _in_context(make_app(tmp_path, pg_database_url))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def flask_env(app) -> dict:
    """Environment for a `flask` subprocess that shares this app's data dir and database."""
    env = dict(os.environ)
    env.update({
        "STAGEBACKUP_DATA_DIR": app.config["DATA_DIR"],
        "STAGEBACKUP_DATABASE_URL": app.config["DATABASE_URL"],
        "STAGEBACKUP_PROGRESS_FLUSH_INTERVAL_S": "0.1",
        "STAGEBACKUP_HEARTBEAT_INTERVAL_S": "0.5",
        "FLASK_APP": "stagebackup",
    })
    return env


def flask_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "stagebackup", *args]


def run_flask(app, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        flask_cmd(*args), env=flask_env(app), capture_output=True, text=True, timeout=timeout, check=check,
    )


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    """A small deterministic tree: 300 files, 12 MiB, and every hostile kind (stagebackup.testing.corpus)."""
    return generate(tmp_path_factory.mktemp("corpus") / "tree", CorpusSpec(files=300, total_mb=12, seed="7"))


def build_hostile_tree(root: Path) -> Path:
    """Names and file kinds that break naive backup code."""
    root.mkdir(parents=True)
    broot = os.fsencode(root)
    (root / "plain.txt").write_text("plain\n")
    (root / "with space and 中文 ünïcode.txt").write_text("unicode\n")
    with open(broot + b"/latin1-\xe9t\xe9-\xff.bin", "wb") as fh:  # not valid UTF-8
        fh.write(b"\x00\x01binary\xff")
    os.mkdir(broot + b"/dir-\xfe\xfd")
    with open(broot + b"/dir-\xfe\xfd/inner\nnewline.txt", "wb") as fh:
        fh.write(b"newline in the name\n")
    (root / "empty-file").write_bytes(b"")
    (root / "empty-dir").mkdir()
    deep = root
    for i in range(12):  # > 255 bytes of path: PAX long names
        deep = deep / (f"level{i:02d}-" + "x" * 20)
    deep.mkdir(parents=True)
    (deep / ("long-name-" + "y" * 200 + ".txt")).write_text("deep\n")
    with open(root / "sparse.img", "wb") as fh:
        fh.seek(8 << 20)
        fh.write(b"end")
    readonly = root / "readonly.txt"
    readonly.write_text("read only\n")
    readonly.chmod(0o444)
    script = root / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    os.link(root / "plain.txt", root / "hardlink-to-plain.txt")
    os.symlink("plain.txt", root / "link-to-plain")
    os.symlink("empty-dir", root / "link-to-dir")
    os.symlink("/nonexistent/target", root / "dangling-link")
    os.mkfifo(root / "a-fifo")
    os.utime(root / "plain.txt", (1_600_000_000, 1_600_000_000))
    return root
