#!/usr/bin/env python3
"""历史版本 latency: the versions page of one file on a catalog of 1,000,000 members spread over 30 backups
(the same tree backed up 30 times, a third of them on tape), timed through the Flask test client (routing,
the indexed query, tape locations, template), median and worst of several requests. Target: <= 200 ms.

    .venv/bin/python bench/bench_versions.py [--members 1000000] [--backups 30] [--repeat 15]
                                             [--database-url postgresql+psycopg://…]

The catalog is written straight into the database (one executemany in one transaction), not by running 30
backups: the figure is the query's, not the pipeline's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import result, row  # also puts the repository on sys.path

COLUMNS = ("job_id", "archive_id", "parent", "name", "kind", "size", "mtime", "mode", "link_target")
FILES_PER_FOLDER = 100


def member_rows(job_id: int, archive_id: int, count: int):
    for i in range(count):
        parent = b"srv/projects/dir%05d" % (i // FILES_PER_FOLDER)
        yield job_id, archive_id, parent, b"file%03d.dat" % (i % FILES_PER_FOLDER), "file", 1000 + job_id, \
            1.7e9 + job_id * 86400, 0o100644, None


def build(backups: int, members: int) -> list[int]:
    """``backups`` finished backups of one project, each cataloguing members/backups files; every third on tape."""
    from stagebackup.extensions import db
    from stagebackup.models import Archive, Job, Project
    from stagebackup.tape_models import Tape, TapeFile

    project = Project(name="bench", sources=["/srv/projects"], dest_path="/backups")
    tape = Tape(label="BENCH1", uuid="bench", capacity_bytes=1 << 40)
    db.session.add_all([project, tape])
    db.session.flush()
    per_backup = members // backups
    jobs = []
    for n in range(backups):
        on_tape = n % 3 == 0
        job = Job(project_id=project.id, project_name="bench", kind="backup", flow="backup-directory",
                  status="succeeded")
        db.session.add(job)
        db.session.flush()
        archive = Archive(job_id=job.id, format="tgz", sha256="0" * 64, path=None if on_tape else f"/backups/{n}.tgz",
                          location_kind="tape" if on_tape else "directory")
        db.session.add(archive)
        db.session.flush()
        if on_tape:
            db.session.add(TapeFile(tape_id=tape.id, file_number=n + 1, kind="archive", archive_id=archive.id,
                                    job_id=job.id))
        jobs.append((job.id, archive.id))
    db.session.commit()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        insert = (f"INSERT INTO archive_members ({', '.join(COLUMNS)}) VALUES "
                  f"({', '.join(['%s' if db.engine.dialect.name == 'postgresql' else '?'] * len(COLUMNS))})")
        if db.engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA cache_size = -262144")
            cursor.execute("BEGIN")
        for job_id, archive_id in jobs:
            cursor.executemany(insert, member_rows(job_id, archive_id, per_backup))
        if db.engine.dialect.name == "sqlite":
            cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return [job_id for job_id, _ in jobs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--backups", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    from stagebackup import create_app
    from stagebackup.extensions import db
    from stagebackup.models import ArchiveMember
    from stagebackup.paths import path_token
    from tests.conftest import SignedInClient

    work = Path(tempfile.mkdtemp(prefix="bench-versions-"))
    try:
        app = create_app({"DATA_DIR": str(work / "data"), "DATABASE_URL": args.database_url})
        with app.app_context():
            started = time.monotonic()
            build(args.backups, args.members)
            count = db.session.query(ArchiveMember).count()
            dialect = db.engine.dialect.name
            print(f"{dialect}: {count:,} members in {args.backups} backups inserted in "
                  f"{time.monotonic() - started:.0f} s")
        folders = max(1, args.members // args.backups // FILES_PER_FOLDER)
        path = f"srv/projects/dir{folders // 2:05d}/file042.dat"
        app.test_client_class = SignedInClient  # signed in as an admin, as the tests' client is
        client = app.test_client()
        url = f"/restore/versions?path={path_token(path)}"
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
            page = response.get_data(as_text=True)
            assert response.status_code == 200 and page.count("<tr data-job=") == args.backups, response.status_code
        median = statistics.median(times)
        print(f"versions of {path}: median {median:.1f} ms   max {max(times):.1f} ms "
              f"(target <= 200 ms): {'OK' if median <= 200 else 'OVER'}")
        result("versions", [row(f"versions of a file, {count:,} members in {args.backups} backups ({dialect})",
                                median, goal="<= 200", unit="ms")])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
