"""Browsing a 1,000,000-member catalog: correct folders and paging, and every query on an index.

Timing is measured by bench/bench_browse.py; here the query plans are asserted (SQLite ``EXPLAIN QUERY
PLAN``, PostgreSQL and MariaDB ``EXPLAIN``), which is what keeps a page's cost independent of the catalog's size.
"""

from __future__ import annotations

import itertools
import os
import time

import pytest
from sqlalchemy import select

from stagebackup.extensions import db
from stagebackup.models import Archive, Job, Project
from stagebackup.restore import browse, plan
from stagebackup.restore.selection import Selection

CLIENTS, SUBDIRS, FILES_PER_SUBDIR, FLAT_FILES = 100, 10, 990, 10_000
COLUMNS = ("job_id", "archive_id", "parent", "name", "kind", "size", "mtime", "mode", "link_target")


def catalog_rows(job_id: int, archive_id: int):
    """~1,001,100 members: sources /srv/projects, /srv/projects-2024, /srv/fonts and /home/lin/docs."""
    def row(parent: str, name: str, kind: str = "file", size: int = 1234):
        return (job_id, archive_id, os.fsencode(parent), os.fsencode(name), kind, size, 1_600_000_000.0,
                0o755 if kind == "dir" else 0o644, None)

    for source in ("srv/projects", "srv/projects-2024", "srv/fonts", "home/lin/docs"):
        parent, _, name = source.rpartition("/")
        yield row(parent, name, "dir", 0)
    yield row("srv/projects-2024", "a.txt")
    yield row("srv/fonts", "sans.ttf")
    yield row("home/lin/docs", "note.md")
    yield row("home/lin/docs", b"caf\xe9-latin1.txt".decode("utf-8", "surrogateescape"))
    for c in range(CLIENTS):
        client = f"srv/projects/客户{c:03d}"
        yield row("srv/projects", f"客户{c:03d}", "dir", 0)
        for s in range(SUBDIRS):
            yield row(client, f"sub{s}", "dir", 0)
            for f in range(FILES_PER_SUBDIR):
                yield row(f"{client}/sub{s}", f"file{f:05d}.dat")
    yield row("srv/projects/客户042/sub7", "logo_v3.ai", size=4096)
    yield row("srv/projects", "flat", "dir", 0)
    for f in range(FLAT_FILES):
        yield row("srv/projects/flat", f"f{f:06d}.txt")


def bulk_insert(job_id: int, archive_id: int) -> int:
    """As fast as each database takes rows: executemany on SQLite, COPY on PostgreSQL."""
    db.session.commit()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.engine.dialect.name == "postgresql":
            # PostgreSQL builds an index from sorted rows much faster than it updates one per row.
            indexes = cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'archive_members' "
                                     "AND indexname LIKE 'ix_%'").fetchall()
            for (definition,) in indexes:
                cursor.execute("DROP INDEX " + definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0])
            with cursor.copy(f"COPY archive_members ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in catalog_rows(job_id, archive_id):
                    copy.write_row(r)
            for (definition,) in indexes:
                cursor.execute(definition)
            cursor.execute("ANALYZE archive_members")
        elif db.engine.dialect.name == "mysql":  # PyMySQL sends executemany as multi-row INSERTs
            insert = f"INSERT INTO archive_members ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
            rows = catalog_rows(job_id, archive_id)
            while batch := list(itertools.islice(rows, 20_000)):
                cursor.executemany(insert, batch)
            raw.commit()
            cursor.execute("ANALYZE TABLE archive_members")
            cursor.fetchall()
        else:
            cursor.execute("PRAGMA cache_size = -262144")  # 256 MiB: index pages stay in memory
            cursor.execute("BEGIN")  # the engine runs pysqlite in autocommit mode: one transaction, not 1M
            cursor.executemany(f"INSERT INTO archive_members ({', '.join(COLUMNS)}) VALUES "
                               f"({', '.join('?' * len(COLUMNS))})", catalog_rows(job_id, archive_id))
            cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
        raw.commit()
        cursor.execute("SELECT count(*) FROM archive_members")
        return cursor.fetchone()[0]
    finally:
        raw.close()


@pytest.fixture
def big_catalog(any_db_app):
    project = Project(name="大目录", sources=["/srv/projects"], dest_path="/backups")
    db.session.add(project)
    db.session.flush()
    job = Job(project_id=project.id, project_name=project.name, kind="backup", flow="backup-directory",
              status="succeeded")
    db.session.add(job)
    db.session.flush()
    archive = Archive(job_id=job.id, format="tgz", path="/backups/a.tar.gz", sha256="0" * 64)
    db.session.add(archive)
    db.session.commit()
    started = time.monotonic()
    count = bulk_insert(job.id, archive.id)
    assert count >= 1_000_000
    print(f"inserted {count} members in {time.monotonic() - started:.1f} s")
    return job.id


def plan_of(statement) -> str:
    compiled = statement.compile(dialect=db.engine.dialect)
    params = compiled.construct_params()
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    prefix = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
    rows = db.session.connection().exec_driver_sql(prefix + compiled.string, params).all()
    return "\n".join(" ".join(str(col) for col in row) for row in rows)


def names(page) -> list[str]:
    return [e.name for e in page.entries]


def test_million_member_catalog_browses_correctly_on_indexes(big_catalog):
    job_id = big_catalog
    # Folders above the sources have no rows; they come from the loose index scan.
    assert names(browse.list_folder(job_id, "")) == ["home", "srv"]
    assert names(browse.list_folder(job_id, "srv")) == ["fonts", "projects", "projects-2024"]
    assert names(browse.list_folder(job_id, "home/lin")) == ["docs"]
    docs = browse.list_folder(job_id, "home/lin/docs")
    assert names(docs) == ["caf\udce9-latin1.txt", "note.md"]
    client = browse.list_folder(job_id, "srv/projects/客户042/sub7", limit=5)
    assert names(client) == [f"file{i:05d}.dat" for i in range(5)] and client.next_after == "file00004.dat"

    # Keyset paging through 10,000 entries: every name once, in order; and back again.
    seen, after, pages = [], None, 0
    while True:
        page = browse.list_folder(job_id, "srv/projects/flat", after=after, limit=500)
        seen += names(page)
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [f"f{i:06d}.txt" for i in range(FLAT_FILES)] and pages == FLAT_FILES // 500
    back = browse.list_folder(job_id, "srv/projects/flat", before="f005000.txt", limit=500)
    assert names(back) == [f"f{i:06d}.txt" for i in range(4500, 5000)] and back.prev_before == "f004500.txt"

    # Search: a name prefix is one range; a glob with a literal start scans that range only.
    hit = browse.search(job_id, "logo_v3")
    assert [e.path for e in hit.entries] == ["srv/projects/客户042/sub7/logo_v3.ai"] and hit.exhausted
    assert len(browse.search(job_id, "file00001*").entries) == 100  # one page of 1,000 matches
    # A glob with no literal start is scanned in bounded slices; the cursor continues where it stopped.
    found, cursor, requests = [], None, 0
    while True:
        page = browse.search(job_id, "*.ai", cursor=cursor)
        requests += 1
        found += [e.path for e in page.entries]
        if page.exhausted:
            break
        cursor = page.next_cursor
    assert found == ["srv/projects/客户042/sub7/logo_v3.ai"]
    assert requests == -(-1_001_110 // browse.SEARCH_SCAN_ROWS)  # each request filtered one bounded window

    # A restore of chosen folders and files reads only their rows, and plans what reading every row plans.
    archive = type("Ref", (), {"id": db.session.scalar(select(Archive.id).where(Archive.job_id == job_id)),
                               "input_bytes": 0})()
    chosen = ["srv/projects/客户042", "srv/projects/flat/f000007.txt", "srv/fonts",
              b"home/lin/docs/caf\xe9-latin1.txt".decode("utf-8", "surrogateescape")]  # a name that is not UTF-8
    by_index = plan.plan_restore(job_id, [archive], Selection(chosen))
    every_row = plan.plan_restore(job_id, [archive], Selection(chosen + ["no-such-*"]))  # a glob: every row
    files = SUBDIRS * FILES_PER_SUBDIR + 1 + 3  # the client's files and its logo; the three chosen files
    assert (by_index.files_total, by_index.folders_total) == (files, 1 + SUBDIRS + 1)
    assert by_index == every_row and by_index.archives == [archive]
    assert plan.plan_restore(job_id, [archive], Selection(["srv/projects/客户0420"])).archives == []  # nothing chosen
    assert plan.plan_restore(job_id, [archive], Selection(["srv/projects/客户0420"])).catalogued

    # The query plans: index range scans, never a scan of the table.
    restore_plan = plan_of(plan.selected_rows(job_id, Selection(chosen[:3])))  # (plan_of binds str as text)
    folder_plan = plan_of(browse.folder_query(job_id, "srv/projects/flat", "f000100.txt", 201))
    search_plan = plan_of(browse.search_query(job_id, b"logo_v3", b"logo_v4", ("logo_v3.ai", 5), 101))
    glob_plan = plan_of(browse.search_query(job_id, b"", None, ("file00500.dat", 1), 101)
                        .where(browse._up_to(("file00599.dat", 990718))).where(browse._glob_filter("*.ai")))
    if db.engine.dialect.name == "sqlite":
        assert "USING INDEX ix_archive_members_job_parent_name (job_id=? AND parent=? AND name>?)" in folder_plan
        assert "USING INDEX ix_archive_members_job_name (job_id=? AND name>? AND name<?)" in search_plan, search_plan
        assert "USING INDEX ix_archive_members_job_name (job_id=? AND name>? AND name<?)" in glob_plan, glob_plan
        assert "SCAN archive_members" not in folder_plan + search_plan + glob_plan + restore_plan, restore_plan
        assert "MULTI-INDEX OR" in restore_plan and "ix_archive_members_job_parent_name" in restore_plan
    elif db.engine.dialect.name == "mysql":  # EXPLAIN's columns: id select_type table type possible_keys key ...
        # A range on the key's used length: job_id 4 bytes, then the parent and name prefixes (2048, 255).
        assert " range " in folder_plan and " ix_archive_members_job_parent_name 2311 " in folder_plan, folder_plan
        assert " range " in search_plan and " ix_archive_members_job_name 261 " in search_plan, search_plan
        # MariaDB walks a glob's window on the job's part of the name index only (no range on the name yet).
        assert " ix_archive_members_job_name " in glob_plan, glob_plan
        assert " ALL " not in folder_plan + search_plan + glob_plan + restore_plan, restore_plan
    else:
        assert "Index Scan using ix_archive_members_job_parent_name" in folder_plan, folder_plan
        assert "ix_archive_members_job_name" in search_plan, search_plan
        assert "ix_archive_members_job_name" in glob_plan, glob_plan
        assert "Seq Scan" not in folder_plan + search_plan + glob_plan + restore_plan, restore_plan
