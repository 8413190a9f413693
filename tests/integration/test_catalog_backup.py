"""The disaster-recovery walk-through: back up an encrypted project to a directory, ``flask db backup``, lose
the data directory (and the database), ``flask db restore`` into a fresh one, and the backup still restores
byte for byte — with the master key unsealed from the copy, or copied back by hand."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from sqlalchemy import create_engine, text

from stagebackup.extensions import db
from tests.conftest import build_hostile_tree, make_app
from tests.integration.test_restore_jobs import backup, create_project, inside, log_lines, restore, restore_root
from tests.treecompare import assert_same_tree

FIFO = {b"a-fifo"}  # the backup skips the FIFO
PASSPHRASE = "correct horse battery staple"


def _wipe(data_dir, database_url: str) -> None:
    """Lose everything StageBackup keeps: the data directory and, on PostgreSQL, the database's tables."""
    shutil.rmtree(data_dir)
    if database_url.startswith("postgresql"):
        engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def _closed(app) -> None:
    db.session.remove()
    db.engine.dispose()


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed-key", "key-copied-by-hand"])
def test_db_backup_wipe_restore_and_the_backup_still_restores(tmp_path, database_url, sealed):
    if database_url.startswith("mysql"):
        pytest.skip("flask db backup copies SQLite and PostgreSQL; on MariaDB it refuses (test below)")
    first = make_app(tmp_path, database_url)
    with first.app_context():
        src = build_hostile_tree(tmp_path / "src")
        job_id = backup(first, create_project("加密项目", [src], tmp_path / "dest", password="project secret")).id
        args = ["db", "backup", "--to", str(tmp_path / "catalog"), "--json"]
        made = first.test_cli_runner().invoke(args=args + (["--with-key-sealed"] if sealed else []),
                                              input=PASSPHRASE + "\n" if sealed else None)
        assert made.exit_code == 0, made.output
        copy = json.loads(made.output)
        saved_key = (tmp_path / "data" / "master.key").read_bytes()
        written = b"".join(p.read_bytes() for p in (tmp_path / "catalog").rglob("*") if p.is_file())
        assert saved_key.strip() not in written  # never the key in clear, sealed or not
        _closed(first)

    _wipe(tmp_path / "data", database_url)
    second = make_app(tmp_path, database_url)  # a fresh start: empty schema, a new master key
    with second.app_context():
        cli = second.test_cli_runner()
        if sealed:
            wrong = cli.invoke(args=["db", "restore", copy["folder"], "--key-passphrase-stdin"], input="wrong\n")
            assert wrong.exit_code == 2 and "passphrase does not open" in wrong.output
        args = ["db", "restore", os.path.join(copy["folder"], "manifest.json")]
        done = cli.invoke(args=args + (["--key-passphrase-stdin"] if sealed else []),
                          input=PASSPHRASE + "\n" if sealed else None)
        assert done.exit_code == 0, done.output
        if sealed:
            assert f"master key {copy['master_key_id']} unsealed" in done.output
        else:
            assert f"encrypted with key {copy['master_key_id']}" in done.output and "Copy your saved" in done.output
            (tmp_path / "data" / "master.key").write_bytes(saved_key)
        again = cli.invoke(args=["db", "restore", copy["folder"]])
        assert again.exit_code == 4 and "already holds a catalog" in again.output

        target = restore_root(second) / "after-disaster"
        restored = restore(second, job_id, target)
        assert restored.status == "succeeded", (restored.error_message, log_lines(restored.id, "ERROR"))
        assert_same_tree(src, inside(target, src), ignore=FIFO)
        _closed(second)


def test_db_restore_refuses_what_is_not_a_catalog_copy(app, runner, tmp_path):
    (tmp_path / "junk").mkdir()
    result = runner.invoke(args=["db", "restore", str(tmp_path / "junk")])
    assert result.exit_code == 2 and "is not a StageBackup catalog backup" in result.output


@pytest.mark.mariadb
def test_db_backup_on_mariadb_refuses_in_one_line(tmp_path, mysql_database_url):
    app = make_app(tmp_path, mysql_database_url)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["db", "backup", "--to", str(tmp_path / "catalog")])
        assert result.exit_code != 0
        assert "backing up a mysql database is not supported" in result.output
        _closed(app)
