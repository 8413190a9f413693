"""Schema self-heal: upgrading keeps rows, and concurrent starts do not collide."""

import subprocess

from sqlalchemy import inspect, text

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
            conn.execute(text(
                "INSERT INTO jobs (id, project_id, project_name, kind, flow, status, trigger, remark, progress, "
                "bytes_done, bytes_total, files_done, files_total, error_count, attempts, max_attempts, "
                "run_after, cancel_requested, partial_outputs, created_at) VALUES (7, 1, '设计稿', 'backup', "
                "'backup-directory', 'succeeded', 'manual', '首次全量', 100, 5, 5, 1, 1, 0, 1, 3, "
                "'2026-01-01 00:00:00', false, '[]', '2026-01-01 00:00:00')"
            ))
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
