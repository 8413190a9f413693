"""Schema self-heal: every process brings the database to the newest Alembic revision at start.

Several processes start together (gunicorn workers, a worker, the scheduler), so the upgrade runs under
a lock: an advisory lock on PostgreSQL, a named lock (GET_LOCK) on MySQL/MariaDB, an exclusive ``flock``
beside the SQLite file. A process that finds the schema already at head takes no lock at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

import flask_migrate
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy import text
from sqlalchemy.engine import Engine

from .dbtypes import is_mysql
from .extensions import db

# Any fixed 64-bit number; identifies "StageBackup schema upgrade" among advisory locks.
PG_ADVISORY_LOCK_KEY = 0x5374616765424B  # "StageBK"
MYSQL_LOCK_NAME = "stagebackup-schema-upgrade"  # MySQL/MariaDB: a named lock (GET_LOCK)


def _script() -> ScriptDirectory:
    migrate_ext = current_app.extensions["migrate"]
    return ScriptDirectory.from_config(migrate_ext.migrate.get_config(migrate_ext.directory))


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def at_head(engine: Engine) -> bool:
    return current_revisions(engine) == set(_script().get_heads())


@contextlib.contextmanager
def _upgrade_lock(engine: Engine):
    if is_mysql(engine.dialect.name):
        with engine.connect() as conn:
            taken = conn.execute(text("SELECT GET_LOCK(:name, 600)"), {"name": MYSQL_LOCK_NAME}).scalar()
            if taken != 1:
                raise TimeoutError("another process held the schema upgrade lock for 10 minutes")
            try:
                yield
            finally:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})
        return
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PG_ADVISORY_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    lock_path = (database + ".schema-lock") if database and database != ":memory:" else None
    if lock_path is None:
        yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def upgrade_to_head(app: Flask, revision: str = "head") -> None:
    with app.app_context():
        engine = db.engine
        if revision == "head" and at_head(engine):
            return
        with _upgrade_lock(engine):
            # Another process may have finished the upgrade while we waited for the lock.
            if revision == "head" and at_head(engine):
                return
            flask_migrate.upgrade(revision=revision)
        engine.dispose()  # reconnect so no connection keeps a pre-upgrade view of the schema
