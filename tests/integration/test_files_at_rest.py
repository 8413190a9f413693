"""Files at rest: the database, its WAL and SHM, the cache and the data directory are private to the service."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

from stagebackup.extensions import db
from tests.conftest import flask_env, make_app


def loose(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077


def test_a_fresh_install_is_private(app):
    data = app.config["DATA_DIR"]
    db.session.execute(db.text("CREATE TABLE IF NOT EXISTS probe (x)"))  # a write: SQLite opens -wal and -shm
    db.session.commit()
    database = os.path.join(data, "backup_system.db")
    for path in (data, database, database + "-wal", database + "-shm", app.config["CACHE_DIR"],
                 app.config["VTAPE_DIR"], os.path.join(data, "master.key"), os.path.join(data, "secret_key")):
        assert os.path.exists(path), path
        assert loose(path) == 0, (path, oct(os.stat(path).st_mode))


def test_every_process_that_builds_the_app_runs_with_umask_077(app):
    """The web (wsgi), the worker and the CLI all build the app: the mask is set there, in a fresh process."""
    code = "import os; from stagebackup import create_app; create_app(); print(oct(os.umask(0o022)))"
    result = subprocess.run([sys.executable, "-c", code], env={**flask_env(app), "PYTHONPATH": os.getcwd()},
                            capture_output=True, text=True, timeout=60, check=True, preexec_fn=lambda: os.umask(0o022))
    assert result.stdout.strip() == "0o77"


def test_a_loosened_install_is_tightened_at_start_with_a_log_line(tmp_path, caplog):
    first = make_app(tmp_path)
    with first.app_context():
        db.session.execute(db.text("CREATE TABLE IF NOT EXISTS probe (x)"))
        db.session.commit()
        db.engine.dispose()
    data = first.config["DATA_DIR"]
    database = os.path.join(data, "backup_system.db")
    cached = os.path.join(first.config["CACHE_DIR"], "members.list")
    with open(cached, "w") as fh:
        fh.write("/srv/secret/path\n")
    for path, mode in ((data, 0o755), (database, 0o644), (first.config["CACHE_DIR"], 0o755), (cached, 0o644),
                       (os.path.join(data, "master.key"), 0o644)):
        os.chmod(path, mode)
    restore_root = first.config["RESTORE_ROOTS"][0]
    os.makedirs(os.path.join(restore_root, "restored"))
    os.chmod(os.path.join(restore_root, "restored"), 0o755)  # restored files keep the modes they were given

    with caplog.at_level(logging.WARNING):
        second = make_app(tmp_path)
    for path in (data, database, first.config["CACHE_DIR"], cached, os.path.join(data, "master.key")):
        assert loose(path) == 0, path
    assert loose(os.path.join(restore_root, "restored")) == 0o055
    assert any("tightened permissions" in record.getMessage() for record in caplog.records)
    with second.app_context():
        db.engine.dispose()
