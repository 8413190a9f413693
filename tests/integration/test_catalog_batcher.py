"""The member catalog keeps exact bytes of hostile names and splits paths for folder listings."""

from stagebackup.catalog import BATCH_ROWS, MemberBatcher
from stagebackup.extensions import db
from stagebackup.models import Archive, ArchiveMember, Job
from stagebackup.pipeline.archive import member_row


def test_member_rows_split_paths_into_exact_bytes():
    assert member_row("a/b/c.txt", "file", 3, 1, 0o100644) == (b"a/b", b"c.txt", "file", 3, 1.0, 0o100644, None)
    assert member_row("top", "dir")[:2] == (b"", b"top")
    assert member_row("a/dir/", "dir")[:2] == (b"a", b"dir")
    assert member_row("l\udcff", "symlink", link_target="t\udcfe")[1::5] == (b"l\xff", b"t\xfe")


def test_batches_store_exact_bytes(any_db_app):
    job = Job(project_name="p", flow="backup-directory", kind="backup")
    db.session.add(job)
    db.session.flush()
    archive = Archive(job_id=job.id, format="tgz", sha256="0" * 64)
    db.session.add(archive)
    db.session.flush()
    batcher = MemberBatcher(job.id, archive.id)
    hostile = b"srv/d\xff/n\xe9me\nx"
    batcher.add(hostile, "file", size=3, mtime=1.5, mode=0o100644)
    for i in range(BATCH_ROWS + 5):
        batcher.add(f"srv/bulk/{i}", "file")
    batcher.flush()
    db.session.commit()
    assert batcher.count == BATCH_ROWS + 6
    row = db.session.scalar(db.select(ArchiveMember).where(ArchiveMember.parent == "srv/d\udcff"))
    assert (row.name, row.size, row.mtime, row.mode) == ("n\udce9me\nx", 3, 1.5, 0o100644)
    assert db.session.scalar(db.select(db.func.count()).where(ArchiveMember.parent == "srv/bulk")) == BATCH_ROWS + 5


def test_bulk_insert_keeps_every_row_in_order_across_statements(any_db_app):
    """More rows than one multi-row statement takes (SQLite), a ragged last chunk, converted columns."""
    from datetime import UTC, datetime

    from stagebackup.bulk import SQLITE_ROWS, insert_rows
    from stagebackup.models import JobLog

    job = Job(project_name="p", flow="backup-directory", kind="backup")
    db.session.add(job)
    db.session.flush()
    count = 2 * SQLITE_ROWS + 7
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows = [(f"line {i} \udcff", job.id, "PACK", at) for i in range(count)]  # columns out of table order
    insert_rows(JobLog.__table__, ("message", "job_id", "tag", "at"), rows, convert=("at", "message"))
    db.session.commit()
    stored = db.session.scalars(db.select(JobLog).where(JobLog.job_id == job.id).order_by(JobLog.id)).all()
    assert [line.message for line in stored] == [f"line {i} \\xff" for i in range(count)]  # escaped for display
    assert {(line.tag, line.at.replace(tzinfo=UTC)) for line in stored} == {("PACK", at)}
