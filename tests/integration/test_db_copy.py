"""``flask db copy --to URL``: SQLite's rows move to an empty PostgreSQL or MariaDB database, exactly."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select

from stagebackup import project_checks, projects
from stagebackup.extensions import db
from stagebackup.jobs import queue
from stagebackup.models import Archive, ArchiveMember, AuditEvent, Job, JobLog, Project, Secret, User
from tests.conftest import make_app, run_flask, signed_in_user

HOSTILE_NAME = b"caf\xe9 \xff-Latin1.txt".decode("utf-8", "surrogateescape")
TABLES = (Project, Secret, Job, JobLog, Archive, ArchiveMember, AuditEvent, User)


def _fill(tmp_path) -> dict:
    """A small catalog with every kind of value: an encrypted project, a job, its logs, an archive whose
    members have non-UTF-8 names, a user; returns what the target must hold."""
    source, dest = tmp_path / "设计", tmp_path / "backups"
    source.mkdir()
    dest.mkdir()
    spec = project_checks.ProjectSpec(name="设计稿", sources=[str(source)], dest_dir=str(dest), password="pw")
    project = projects.create(spec, actor="test")
    for name in ("Design", "design"):  # names differ in case only: both are kept
        projects.create(project_checks.ProjectSpec(name=name, sources=[str(source)], dest_dir=str(dest)), actor="test")
    job = queue.enqueue(project, actor="test", remark="首次全量")
    archive = Archive(job_id=job.id, format="tgz", path="/backups/\udcff.tgz", sha256="a" * 64, size=2**40)
    db.session.add(archive)
    db.session.flush()
    db.session.add_all(ArchiveMember(job_id=job.id, archive_id=archive.id, parent="srv/设计", kind="file",
                                     name=f"{i}-{HOSTILE_NAME}", size=2**33 + i, mtime=1_600_000_000.5)
                       for i in range(12_000))
    job.started_at = datetime(2026, 1, 2, 3, 4, 5, 678901)
    db.session.commit()
    signed_in_user("viewer")
    return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model)) for model in TABLES}


def test_copy_moves_every_row_and_new_ids_continue(tmp_path, server_database_url):
    source = make_app(tmp_path)
    with source.app_context():
        expected = _fill(tmp_path)
        db.session.remove()  # no open SQLite transaction while the copy reads
        result = run_flask(source, "db", "copy", "--to", server_database_url, "--json", check=False)
        db.engine.dispose()
    assert result.returncode == 0, result.stderr
    copied = json.loads(result.stdout)["rows"]
    assert {name: copied[name] for name in expected} == expected

    target = make_app(tmp_path, server_database_url)
    with target.app_context():
        assert {m.__tablename__: db.session.scalar(select(func.count()).select_from(m)) for m in TABLES} == expected
        assert sorted(db.session.scalars(select(Project.name))) == ["Design", "design", "设计稿"]
        project = db.session.scalar(select(Project).where(Project.name == "设计稿"))
        assert project.encrypted and project.secret_id is not None and project.sources == [str(tmp_path / "设计")]
        job = db.session.scalar(select(Job))
        assert job.remark == "首次全量" and job.started_at == datetime(2026, 1, 2, 3, 4, 5, 678901)
        archive = db.session.scalar(select(Archive))
        assert archive.path == "/backups/\udcff.tgz" and archive.size == 2**40
        member = db.session.scalar(select(ArchiveMember).where(ArchiveMember.name == f"7-{HOSTILE_NAME}"))
        assert member.size == 2**33 + 7 and member.parent == "srv/设计"
        # The sequences continue after the copied ids: new rows get fresh ids.
        newest = max(db.session.scalars(select(Job.id)))
        again = queue.enqueue(project, actor="test", kind="verify", source_job_id=job.id)
        assert again.id > newest
        db.session.add(ArchiveMember(job_id=job.id, archive_id=archive.id, parent="", name="new", kind="file"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()

    # A database that holds rows is refused, and left as it was.
    with source.app_context():
        refused = run_flask(source, "db", "copy", "--to", server_database_url, check=False)
        db.engine.dispose()
    assert refused.returncode == 4 and "Traceback" not in refused.stderr  # 4: a conflict
    assert "is not empty (table " in refused.stderr and "db copy only fills an empty database" in refused.stderr
    with target.app_context():
        assert db.session.scalar(select(func.count()).select_from(Job)) == expected["jobs"] + 1
        db.session.remove()
        db.engine.dispose()
