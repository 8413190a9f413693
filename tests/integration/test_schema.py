"""Schema self-heal: upgrading keeps rows, and concurrent starts do not collide."""

import subprocess
from datetime import datetime

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, inspect, table, text

from stagebackup.extensions import db
from stagebackup.schema import at_head, current_revisions, upgrade_to_head
from tests.conftest import flask_cmd, flask_env, make_app


def test_database_from_the_first_revision_upgrades_without_losing_rows(tmp_path, database_url):
    app = make_app(tmp_path, database_url, SCHEMA_AUTO_UPGRADE=False)
    upgrade_to_head(app, revision="0001")
    with app.app_context():
        assert current_revisions(db.engine) == {"0001"}
        assert "archives" not in inspect(db.engine).get_table_names()
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO projects (id, name, sources, includes, excludes, mode, archive_format, "
                "compression_level, dest_kind, dest_path, created_at, updated_at) VALUES "
                "(1, '设计稿', '[\"/srv/projects\"]', '[]', '[\"*.tmp\"]', 'archive', 'tgz', 6, 'directory', "
                ":dest, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ), {"dest": b"/backups/\xff"})
            # Through SQLAlchemy, which quotes ``trigger`` (a reserved word on MariaDB).
            job = {"id": 7, "project_id": 1, "project_name": "设计稿", "kind": "backup", "flow": "backup-directory",
                   "status": "succeeded", "trigger": "manual", "remark": "首次全量", "progress": 100,
                   "bytes_done": 5, "bytes_total": 5, "files_done": 1, "files_total": 1, "error_count": 0,
                   "attempts": 1, "max_attempts": 3, "run_after": datetime(2026, 1, 1),
                   "cancel_requested": False, "partial_outputs": "[]", "created_at": datetime(2026, 1, 1)}
            conn.execute(table("jobs", *(column(name) for name in job)).insert().values(job))
        db.engine.dispose()

    upgrade_to_head(app)
    with app.app_context():
        assert at_head(db.engine)
        from stagebackup.models import Job, Project

        project = db.session.get(Project, 1)
        assert project.sources == ["/srv/projects"] and project.excludes == ["*.tmp"]
        assert project.dest_path == "/backups/\udcff"
        job = db.session.get(Job, 7)
        assert (job.remark, job.status, job.progress) == ("首次全量", "succeeded", 100)
        db.session.remove()  # end the read: SQLite transactions take the write lock (BEGIN IMMEDIATE)
        assert "archives" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_processes_starting_together_upgrade_once(tmp_path, database_url):
    app = make_app(tmp_path, database_url, SCHEMA_AUTO_UPGRADE=False)  # nothing created yet
    env = flask_env(app)
    procs = [
        subprocess.Popen(flask_cmd("projects", "list", "--json"), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, results
    assert all(out.strip() == "[]" for out, _ in results)
    with app.app_context():
        assert at_head(db.engine)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        db.engine.dispose()


def _schema_differences(app) -> list:
    """What Alembic's autogenerate would change to make the migrated database match models.py and tape_models.py."""
    from stagebackup.models import MYSQL_LOCKS

    mysql = db.engine.dialect.name in ("mysql", "mariadb")

    def include(obj, name, kind, _reflected, _compare_to):
        # MySQL/MariaDB: the partial-index locks are generated columns with unique indexes (migration "mariadb").
        return not (mysql and (name in MYSQL_LOCKS or name in MYSQL_LOCKS.values()))

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include})
        return compare_metadata(context, db.metadata)


def test_migrations_and_models_agree_and_downgrade_to_nothing(tmp_path, database_url):
    app = make_app(tmp_path, database_url, SCHEMA_AUTO_UPGRADE=False)
    upgrade_to_head(app)
    with app.app_context():
        assert _schema_differences(app) == []
        db.engine.dispose()
        flask_migrate.downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
    upgrade_to_head(app)  # and back up again from nothing
    with app.app_context():
        assert at_head(db.engine)
        db.engine.dispose()
